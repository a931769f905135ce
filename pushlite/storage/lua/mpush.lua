-- Compare-and-set of one field of the MPush device_id map: it changes only if
-- it still holds what the caller read, so two concurrent token calls for the
-- same app device cannot both map it (the loser moves the winner's device).
--
-- KEYS[1] the {instance}:mpush:devices hash
-- ARGV[1] the app's device_id, ARGV[2] the value read ("" = absent),
-- ARGV[3] the pushlite device id to store.
-- Returns 1 when stored, 0 when the field had changed meanwhile.

return function(KEYS, ARGV)
  if (redis.call("HGET", KEYS[1], ARGV[1]) or "") ~= ARGV[2] then return 0 end
  redis.call("HSET", KEYS[1], ARGV[1], ARGV[3])
  return 1
end
