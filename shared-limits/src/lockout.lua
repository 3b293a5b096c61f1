-- One failed authentication against several failure budgets.
-- KEYS: pairs of (budget, lock); ARGV: pairs of (interval in microseconds, burst), one per pair.
-- A budget that is spent sets its lock for as long as the budget needs to allow another failure
-- (at least a second). Returns, per pair, {started, milliseconds}: started is -1 when the budget
-- still allowed the failure, 1 when this failure started the lockout, 0 when the key was locked
-- already (a concurrent failure got there first: that one reports it, so it is audited once).
local now = now_micros()
local out = {}
for i = 1, #KEYS, 2 do
  local allowed, n = gcra(KEYS[i], tonumber(ARGV[i]), tonumber(ARGV[i + 1]), now)
  if allowed then
    out[#out + 1] = -1
    out[#out + 1] = 0
  else
    local ms = math.max(1000, math.ceil(n / 1000))
    local started = redis.call('SET', KEYS[i + 1], '1', 'NX', 'PX', ms)
    if not started then redis.call('SET', KEYS[i + 1], '1', 'PX', ms) end
    out[#out + 1] = started and 1 or 0
    out[#out + 1] = ms
  end
end
return out
