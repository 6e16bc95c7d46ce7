#!/usr/bin/env python3
# Writes the seed corpora in fuzz/corpus/ (hand-picked inputs; tokens in the project format,
# made with a fixed random seed). Run once; the files are committed. python3 fuzz/make_seeds.py
import os, zlib, random, json, hashlib
random.seed(11)
B62="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
B36="0123456789abcdefghijklmnopqrstuvwxyz"
root=os.path.join(os.path.dirname(os.path.abspath(__file__)),"corpus")
def write(target, name, data):
    d=os.path.join(root,target); os.makedirs(d,exist_ok=True)
    if isinstance(data,str): data=data.encode()
    open(os.path.join(d,name),"wb").write(data)
def cks(head):
    v=zlib.crc32(head.encode()); out=[]
    for _ in range(6): out.append(B62[v%62]); v//=62
    return "".join(reversed(out))
def sel(ms):
    d=[]
    t=ms
    for _ in range(10): d.append(B36[t%36]); t//=36
    d=list(reversed(d))
    r=random.getrandbits(64)
    for _ in range(10): d.append(B36[r%36]); r//=36
    return "".join(d)
def body(): return "".join(random.choice(B62) for _ in range(43))
def tok(prefix, legacy=False):
    head=prefix+("" if legacy else sel(1796400000000+random.randrange(10**6)))+body()
    return head+cks(head)
# --- token_parse
toks={}
for p,n in [("sgat_","access"),("sgrt_","refresh"),("sgac_","code"),("sgcs_","client_secret")]:
    toks[n]=tok(p); write("token_parse",f"{n}.txt",toks[n])
    write("token_parse",f"{n}_legacy.txt",tok(p,True))
t=toks["access"]
write("token_parse","bad_checksum.txt",t[:-1]+("A" if t[-1]!="A" else "B"))
write("token_parse","typo_in_body.txt",t[:30]+("x" if t[30]!="x" else "y")+t[31:])
write("token_parse","truncated.txt",t[:-7])
write("token_parse","extra_char.txt",t+"0")
write("token_parse","upper_prefix.txt","SGAT_"+t[5:])
write("token_parse","unknown_prefix.txt","ghp_"+t[5:])
write("token_parse","no_prefix.txt",t[5:])
write("token_parse","bearer_header.txt","Bearer "+t)
write("token_parse","trailing_newline.txt",t+"\n")
write("token_parse","dash_in_body.txt",t[:40]+"-"+t[41:])
write("token_parse","unicode.txt",t[:40]+"é"+t[42:])
write("token_parse","token_id.txt","tok_"+t[5:25])
write("token_parse","token_id_upper.txt","TOK_"+t[5:25].upper())
write("token_parse","token_id_legacy.txt","tok_"+hashlib.sha256(b"x").hexdigest()[:16])
write("token_parse","jwt.txt","eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl")
write("token_parse","empty.txt","")
write("token_parse","underscore_only.txt","_")
# --- form_params
F=[
 ("client_credentials","grant_type=client_credentials&scope=scim.read%20scim.write"),
 ("client_credentials_basic_in_body",f"grant_type=client_credentials&client_id=cl_0123456789abcdef&client_secret={toks['client_secret']}"),
 ("authorization_code",f"grant_type=authorization_code&code={toks['code']}&redirect_uri=https%3A%2F%2Fportal.azure.com%2FTrafficManager%2Foauth&code_verifier=dBjftJeZ4CVP-mJ92K27uhbUJU1p1r_wW1gFWFOEjXk&client_id=cl_0123456789abcdef"),
 ("refresh_token",f"grant_type=refresh_token&refresh_token={toks['refresh']}&scope=scim.read"),
 ("revoke",f"token={toks['access']}&token_type_hint=access_token"),
 ("introspect",f"token={toks['refresh']}&token_type_hint=refresh_token"),
 ("authorize_post","response_type=code&client_id=cl_0123456789abcdef&redirect_uri=https%3A%2F%2Fsystem-admin.okta.com%2Fadmin%2Fapp%2Fcpc%2Fscim%2Foauth%2Fcallback&scope=scim.read+scim.write&state=af0ifjsldkj&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&csrf=Zm9vYmFy&decision=allow"),
 ("login","username=operator%40example.com&password=correct+horse+battery+staple&csrf=q8Wl0n5V3s&next=%2Fui%2Fconsent%3Frequest%3Dabc"),
 ("repeated","scope=a&scope=b"),
 ("empty_values","grant_type=&scope=&client_id="),
 ("percent_plus","a=%+1&b=%zz&c=%&d=%2"),
 ("utf8","name=%C3%BC%C3%B1%C3%AF&x=%FF%FE"),
 ("no_equals","grant_type&scope=x&&=&"),
 ("plus_spaces","scope=scim.read++scim.write+"),
 ("semicolons","a=1;b=2&c=3"),
]
for n,s in F: write("form_params",n+".txt",s)
# --- scim_filter
FL=[
 ("entra_username",'userName eq "Test_User_dfeef4c5-5681-4387-b016-bdf221e82081"'),
 ("entra_externalid",'externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"'),
 ("entra_group_displayname",'displayName eq "Group_87d5d3c3-7bfa-4e8f-8e2b-c8bc3b9c3e54"'),
 ("entra_members",'members[value eq "u1"]'),
 ("okta_username",'userName eq "isaac.brock@example.com"'),
 ("okta_sw",'userName sw "J"'),
 ("rfc_emails_value_path",'emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]'),
 ("rfc_title_pr_and",'title pr and userType eq "Employee"'),
 ("rfc_or_group",'userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")'),
 ("rfc_not",'userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")'),
 ("rfc_meta_gt",'meta.lastModified gt "2011-05-13T04:42:34Z"'),
 ("meta_offset",'meta.created le "2011-05-13T06:42:34.123+02:00"'),
 ("enterprise_manager",'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915"'),
 ("enterprise_employee",'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber ge "5"'),
 ("core_urn",'urn:ietf:params:scim:schemas:core:2.0:User:name.familyName co "O\'Malley"'),
 ("active_bool",'active eq true'),
 ("active_string",'active eq "False"'),
 ("null",'title eq null or nickName ne null'),
 ("escapes",'displayName eq "a \\"q\\" \\\\ \\u00e9\\n \\/ 100%_x"'),
 ("unicode",'userName ew "cödé"'),
 ("groups_value",'groups.value eq "g1"'),
 ("group_members_display",'members[display sw "babs" and type eq "User"]'),
 ("nested_not",'not (not (name.givenName pr)) and (locale eq "en-US" or roles[primary eq false])'),
 ("numbers",'meta.version eq 1 or x gt 1e3 or y le -1.5E-2'),
 ("addresses",'addresses[postalCode eq "91608" and country eq "USA"].locality pr'),
 ("id_in",'id eq "u1" or id eq "u2" or id eq "g1"'),
 ("upper_ops",'USERNAME EQ "BJENSEN@EXAMPLE.COM" AND NOT (Active EQ FALSE)'),
 ("bad_unbalanced",'(userName eq "x"'),
 ("deep",'('*33 + 'a pr' + ')'*33),
]
for n,s in FL: write("scim_filter",n+".txt",s)
# --- patch_path_value
PO="urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENT="urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
def patch(*ops): return json.dumps({"schemas":[PO],"Operations":list(ops)})
P=[
 ("entra_replace_active_string", patch({"op":"Replace","path":"active","value":"False"})),
 ("entra_add_email", patch({"op":"Add","path":'emails[type eq "work"].value',"value":"new@contoso.com"})),
 ("entra_manager", patch({"op":"Add","path":ENT+":manager","value":"26118915"})),
 ("entra_remove_manager", patch({"op":"Remove","path":ENT+":manager"})),
 ("entra_multi", patch({"op":"Replace","path":"displayName","value":"Babs J"},{"op":"Replace","path":"name.givenName","value":"Barbara"},{"op":"Add","path":'addresses[type eq "work"].streetAddress',"value":"1 Main"},{"op":"Replace","path":ENT+":department","value":"Sales"})),
 ("entra_group_add_members", patch({"op":"Add","path":"members","value":[{"value":"u2"},{"value":"u3"}]})),
 ("entra_group_remove_member", patch({"op":"Remove","path":'members[value eq "u2"]'})),
 ("okta_replace_no_path", patch({"op":"replace","value":{"active":False,"name":{"familyName":"Jensen-Smith"}}})),
 ("okta_group_rename", patch({"op":"replace","value":{"id":"g1","displayName":"Guides"}})),
 ("extension_whole", patch({"op":"add","path":ENT,"value":{"schemas":[ENT],"employeeNumber":"42","manager":{"value":"u2"}}})),
 ("extension_remove", patch({"op":"remove","path":ENT})),
 ("remove_emails_filter", patch({"op":"remove","path":'emails[type eq "home" or primary eq true]'})),
 ("replace_primary", patch({"op":"replace","path":'emails[value ew "jensen.org"].primary',"value":True})),
 ("remove_without_path", patch({"op":"remove"})),
 ("add_roles", patch({"op":"add","path":"roles","value":[{"value":"reader","primary":True}]})),
 ("readonly", patch({"op":"replace","path":"id","value":"x"},{"op":"replace","path":"meta.created","value":"2020-01-01T00:00:00Z"})),
 ("password", patch({"op":"replace","path":"password","value":"hunter2"})),
 ("no_schemas", json.dumps({"Operations":[{"op":"add","path":"nickName","value":"Babs"}]})),
 ("bad_op", patch({"op":"move","path":"title"})),
 ("bad_value_type", patch({"op":"replace","path":"emails","value":"not-a-list"})),
]
for n,s in P: write("patch_path_value",n+".json",s)
PP=['name.familyName','emails[type eq "work"].value','members[value eq "2819c223-7f76-453a-919d-413861904646"]',
    ENT+':employeeNumber', ENT+':manager.value','urn:ietf:params:scim:schemas:core:2.0:User:userName',
    'addresses[type eq "work" and primary eq true].streetAddress','emails[not (type eq "home")]','members[value eq "a"].display']
for i,s in enumerate(PP): write("patch_path_value",f"path_{i:02}.txt",s)
# --- scim_normalize
U="urn:ietf:params:scim:schemas:core:2.0:User"; G="urn:ietf:params:scim:schemas:core:2.0:Group"
N=[
 ("rfc7643_full_user", {"schemas":[U,ENT],"externalId":"701984","userName":"bjensen@example.com","name":{"formatted":"Ms. Barbara J Jensen, III","familyName":"Jensen","givenName":"Barbara","middleName":"Jane","honorificPrefix":"Ms.","honorificSuffix":"III"},"displayName":"Babs Jensen","nickName":"Babs","profileUrl":"https://login.example.com/bjensen","emails":[{"value":"bjensen@example.com","type":"work","primary":True},{"value":"babs@jensen.org","type":"home"}],"addresses":[{"type":"work","streetAddress":"100 Universal City Plaza","locality":"Hollywood","region":"CA","postalCode":"91608","country":"USA","formatted":"100 Universal City Plaza\nHollywood, CA 91608 USA","primary":True}],"phoneNumbers":[{"value":"555-555-5555","type":"work"}],"ims":[{"value":"someaimhandle","type":"aim"}],"photos":[{"value":"https://photos.example.com/profilephoto/72930000000Ccne/F","type":"photo"}],"userType":"Employee","title":"Tour Guide","preferredLanguage":"en-US","locale":"en-US","timezone":"America/Los_Angeles","active":True,"password":"t1meMa$heen","groups":[{"value":"e9e30dba","display":"Tour Guides"}],"x509Certificates":[{"value":"MIIDQzCC"}],"meta":{"resourceType":"User","created":"2010-01-23T04:56:22Z","lastModified":"2011-05-13T04:42:34Z","version":"W/\"a330bc54f0671c9\""},ENT:{"employeeNumber":"701984","costCenter":"4130","organization":"Universal Studios","division":"Theme Park","department":"Tour Operations","manager":{"value":"26118915","$ref":"../Users/26118915","displayName":"John Smith"}}}),
 ("entra_create_user", {"schemas":[U,ENT],"externalId":"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef","userName":"Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1","active":True,"emails":[{"primary":True,"type":"work","value":"Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"}],"meta":{"resourceType":"User"},"name":{"formatted":"givenName familyName","familyName":"familyName","givenName":"givenName"},"roles":[],ENT:{"department":"Dept","manager":{"value":"mgr"}}}),
 ("okta_create_user", {"schemas":[U],"userName":"isaac.brock@example.com","name":{"givenName":"Isaac","familyName":"Brock"},"emails":[{"primary":True,"value":"isaac.brock@example.com","type":"work"}],"displayName":"Isaac Brock","locale":"en-US","externalId":"00ujl29u0le5T6Aj10h7","groups":[],"password":"1mz050nq","active":True}),
 ("entra_create_group", {"schemas":[G],"externalId":"8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159","displayName":"displayName","members":[]}),
 ("okta_create_group", {"schemas":[G],"displayName":"Test SCIMv2","members":[{"value":"u1","display":"Babs Jensen"},{"value":"u2"}]}),
 ("case_insensitive_names", {"SCHEMAS":[U.upper()],"USERNAME":"x","Name":{"GIVENNAME":"a"},"Emails":[{"VALUE":"a@b","Type":"WORK"}]}),
 ("wrong_types", {"schemas":[U],"userName":42,"active":"yes","emails":{"value":"x"},"name":"str"}),
 ("missing_username", {"schemas":[U],"displayName":"no user name"}),
 ("unknown_extension", {"schemas":[U,"urn:example:ext"],"userName":"u","urn:example:ext":{"a":1}}),
 ("urn_qualified", {"schemas":[U],U+":userName":"q",ENT+":employeeNumber":"7"}),
 ("empty_values", {"schemas":[U],"userName":"e","title":"","name":{},"emails":[],"phoneNumbers":[{}]}),
 ("group_readonly", {"schemas":[G],"displayName":"g","id":"x","meta":{"created":"now"},"members":[{"value":"u1","$ref":"x","type":"Group"}]}),
 ("not_object", [1,2,3]),
 ("nulls", {"schemas":[U],"userName":"n","title":None,"name":None,"emails":[None]}),
]
for n,v in N: write("scim_normalize",n+".json",json.dumps(v, ensure_ascii=False))
