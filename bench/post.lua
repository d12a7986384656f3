-- wrk script: POST a chat completion to the URL's path with a Bearer key.
-- Arguments (after `--`): mode (json | sse | large), then one or more API keys, used in turn so
-- the gateway sees several users. The requests are built once; wrk only cycles through them.
local requests = {}
local next_index = 1

local function body_for(mode)
  local model = "bench-json"
  local stream = ""
  local prompt = "Say hello."
  if mode == "sse" then
    model = "bench-sse"
    stream = ',"stream":true'
  elseif mode == "large" then
    -- About 200 KB of prompt: the gateway must read it whole to find `model`.
    prompt = string.rep("lorem ipsum dolor sit amet ", 7600)
  end
  return '{"model":"' .. model .. '"' .. stream ..
    ',"messages":[{"role":"user","content":"' .. prompt .. '"}]}'
end

function init(args)
  local mode = args[1] or "json"
  local body = body_for(mode)
  for i = 2, #args do
    requests[#requests + 1] = wrk.format("POST", nil, {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. args[i],
    }, body)
  end
  if #requests == 0 then
    requests[1] = wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, body)
  end
end

function request()
  local r = requests[next_index]
  next_index = next_index % #requests + 1
  return r
end
