-- How long the longest of the locks in KEYS still holds, in milliseconds (0: none is set).
local longest = 0
for _, key in ipairs(KEYS) do
  local ttl = redis.call('PTTL', key)
  if ttl > longest then longest = ttl end
end
return longest
