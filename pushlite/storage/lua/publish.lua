-- Progress of one publish, kept consistent across concurrent delivery jobs.
--
-- KEYS[1] the publish hash.
-- ARGV[1] "create": store a new publish if the instance (KEYS[2]) exists.
--         ARGV[2] = its TTL in seconds, then field/value pairs. Returns 0
--         when there is no such instance.
-- ARGV[1] "batch": a delivery batch finished. ARGV[2] = batches it scheduled
--         (retries), then counter/increment pairs.
-- ARGV[1] "add": the fan-out enqueued ARGV[2] more batches.
-- ARGV[1] "fanout": the fan-out finished (ARGV[2] = 0).
-- ARGV[1] "reopen": an operator requeued undelivered devices. ARGV[2] = 1
--         (the new batch), ARGV[3] = how many devices no longer count as failed.
-- The publish is "done" once the fan-out has finished and every batch with it.

return function(KEYS, ARGV)
  local key, command = KEYS[1], ARGV[1]
  if command == "create" then
    if redis.call("EXISTS", KEYS[2]) == 0 then return 0 end
    for i = 3, #ARGV, 2 do redis.call("HSET", key, ARGV[i], ARGV[i + 1]) end
    redis.call("EXPIRE", key, ARGV[2])
    return 1
  end
  if redis.call("EXISTS", key) == 0 then return 0 end
  redis.call("HINCRBY", key, "batches_total", tonumber(ARGV[2]))
  if command == "batch" then
    redis.call("HINCRBY", key, "batches_done", 1)
    for i = 3, #ARGV, 2 do redis.call("HINCRBY", key, ARGV[i], tonumber(ARGV[i + 1])) end
  elseif command == "add" then
    return 1
  elseif command == "fanout" then
    redis.call("HSET", key, "fanout_done", "1", "status", "delivering")
  else
    redis.call("HINCRBY", key, "failed", -tonumber(ARGV[3]))
    redis.call("HSET", key, "status", "delivering")
    redis.call("HDEL", key, "finished_at")
    return 1
  end
  local state = redis.call("HMGET", key, "fanout_done", "batches_total", "batches_done")
  if state[1] == "1" and tonumber(state[3] or "0") >= tonumber(state[2] or "0") then
    redis.call("HSET", key, "status", "done", "finished_at", redis.call("TIME")[1])
  end
  return 1
end
