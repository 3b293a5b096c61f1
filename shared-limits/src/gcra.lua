-- GCRA (the generic cell rate algorithm) on Redis's own clock, shared by the scripts below it.
-- A budget is one key holding its theoretical arrival time (TAT) in microseconds since the
-- epoch; it expires when the budget is full again, so idle keys cost nothing.

-- Redis before 5 needs this to write after reading TIME; later versions always replicate
-- effects, and keep the call as a no-op.
if redis.replicate_commands then redis.replicate_commands() end

local function now_micros()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- Counts one cell against the budget at `key`: `burst` cells at once, then one per `interval`
-- microseconds. Returns true and the cells still allowed at once, or false and the microseconds
-- until the next cell is allowed (a refused cell is not counted).
local function gcra(key, interval, burst, now)
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - burst * interval
  if allow_at > now then
    return false, allow_at - now
  end
  -- '%.0f': Lua would otherwise write a number this large with 14 significant digits.
  redis.call('SET', key, string.format('%.0f', new_tat),
    'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
  return true, math.floor((now - allow_at) / interval)
end
