# Shared by the benchmark scripts (sourced, run from the repository's root).

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Every response must be a 200 with the expected body (an error with a 200 would not
# count): each wrk thread counts the others, `done` prints the total for run() to check.
check_lua() { # FILE PATTERN
  cat >>"$1" <<LUA
local threads = {}
setup = function(thread) table.insert(threads, thread) end
bad = 0
response = function(status, headers, body)
  if status ~= 200 or not body:find('$2', 1, true) then bad = bad + 1 end
end
done = function(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do n = n + t:get("bad") end
  io.write("Bad responses: " .. n .. "\\n")
end
LUA
}
