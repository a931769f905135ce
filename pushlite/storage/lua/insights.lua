-- A device's report that a publish's notification reached it or was opened
-- (the Beams reporting API), counted once per device and event.
--
-- KEYS: 1 the instance hash, 2 the publish hash, 3 the set of devices that
-- reported this event, 4 the device's bucket. ARGV: 1 the publish counter to
-- count it in, 2 the device id. -> 1 counted, 0 ignored (no such publish or
-- device, or a repeat), -1 no such instance. The set expires with the publish.

return function(keys, argv)
  local instance, publish, reported, bucket = keys[1], keys[2], keys[3], keys[4]
  local counter, device = argv[1], argv[2]
  if redis.call("EXISTS", instance) == 0 then return -1 end
  if device == "" or redis.call("EXISTS", publish) == 0 or redis.call("HEXISTS", bucket, device) == 0 then
    return 0
  end
  if redis.call("SADD", reported, device) == 0 then return 0 end
  redis.call("HINCRBY", publish, counter, 1)
  local ttl = redis.call("PTTL", publish)
  if ttl > 0 then redis.call("PEXPIRE", reported, ttl) end
  return 1
end
