-- One request against a rate limit.
-- KEYS[1]: the budget; ARGV[1]: interval (microseconds); ARGV[2]: burst.
-- Returns {1, remaining} or {0, microseconds until the next request is allowed}.
local allowed, n = gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), now_micros())
if allowed then return {1, n} end
return {0, n}
