-- One publish and its work, kept consistent across concurrent (and dying) workers.
--
-- KEYS (always): 1 the publish hash, 2 its work sorted set, 3 its batches
-- hash, 4 its failures list, 5 its seen set; then 6 the instance hash
-- ("create") or the targeted interest sets ("walk").
--
-- Work items are "fanout" and the batch numbers "0", "1", ... Each is a
-- member of the work set until finished; its score (ms) is when its lease
-- expires (while a worker holds it) or when the sweep next checks that its
-- RQ job still exists (while free). In the batches hash, item n has "n"
-- (device ids not yet answered, comma-separated), "n:r" (ids answered with a
-- temporary failure, waiting for the next attempt) and "n:st", its state
-- "owner|attempt|not_before ms|takeovers|job generation". A device counts
-- once, when it leaves those lists, so counters are exact however often a
-- batch is taken over. The publish is "done" once the fan-out has finished
-- and the work set is empty.
--
-- Commands (ARGV[1]); any other is an error:
--   create ttl grace field value ...        -> 1, or 0 without the instance
--   claim item owner lease [field ...]      -> {"ok", attempt, takeovers, gen, ids, retry_ids[, the publish's
--                                              fields]} | {"done"} | {"busy"} | {"early", not_before}
--   renew owner lease item ...              -> items still held
--   walk owner lease batch_size grace       -> a step (below)
--   add owner lease grace last id ...       -> a step; last = "1" when no ids follow
--   fanned owner                            -> the publish's status after the fan-out ended | "lost"
--   answer item owner lease group ...       -> 1; a group is name, count, entries
--   finish item owner max_attempts delay grace reason group ...
--                                           -> {"done", publish done 0/1} | {"retry", not_before, gen} | {"lost"}
--   release item owner grace                -> {"ok", not_before, gen} | {"busy"}; owner "" = only an expired lease
--   due grace                               -> {status, item, owner, not_before, gen, ...}: items whose score passed
--   bump grace item ...                     -> 1: free items checked, next check after grace
--   reopen token grace id ...               -> {batch, gen} | {} (token already used)
--
-- A fan-out step replies {finished 0/1[, new batch, gen]} | {"lost"}; or,
-- when it ended a fan-out of at most one batch, {"held", batch, ids} (the
-- walker now holds that batch) | {"ended"} (no device: the publish is done).

-- Set from each call's keys (functions get them as an argument, not a global).
local KEYS, P, W, B, F, S
local FAILURES_KEPT = 100
local TERMINAL = {delivered = true, removed = true, failed = true, skipped = true}

local function now_ms()
  local t = redis.call("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function state(item)
  local raw = redis.call("HGET", B, item .. ":st")
  if not raw then return nil end
  local f = split(raw, "|")
  return {owner = f[1], attempt = tonumber(f[2]), not_before = tonumber(f[3]),
          takeovers = tonumber(f[4]), gen = tonumber(f[5])}
end

local function save(item, st)
  redis.call("HSET", B, item .. ":st",
    table.concat({st.owner, st.attempt, st.not_before, st.takeovers, st.gen}, "|"))
end

local function held(item, st, owner, now)
  return st ~= nil and st.owner == owner and owner ~= "" and
    tonumber(redis.call("ZSCORE", W, item) or "0") > now
end

-- `left`: the work items left, counted before this call removed any. A key
-- a call may have deleted is never touched again in that call: on a Cluster,
-- that fails while the key's slot is moving, with the call half applied.
local function check_done(left)
  if left == 0 and redis.call("HGET", P, "fanout_done") == "1"
      and redis.call("HGET", P, "status") ~= "done" then
    redis.call("HSET", P, "status", "done", "finished_at", redis.call("TIME")[1])
  end
end

local function expire_all()
  local ttl = redis.call("TTL", P)
  if ttl > 0 then
    for _, key in ipairs({W, B, F, S}) do redis.call("EXPIRE", key, ttl) end
  end
end

-- A new batch of `ids` (already deduplicated), free, checked after `grace`.
local function new_batch(ids, grace, now)
  local n = tostring(redis.call("HINCRBY", P, "batches_total", 1) - 1)
  redis.call("HSET", B, n, table.concat(ids, ","))
  save(n, {owner = "", attempt = 0, not_before = 0, takeovers = 0, gen = 0})
  redis.call("ZADD", W, now + grace, n)
  return n
end

-- Appends to `out` the ids of list[first..last] not yet in the seen set,
-- which they join: one SMISMEMBER and one SADD per step of at most STEP
-- ids (a call per id cost the walk more Redis time than the SSCAN itself).
local STEP = 1000
local function unseen(list, first, last, out)
  local n = #out
  for from = first, last, STEP do
    local to = math.min(last, from + STEP - 1)
    local known = redis.call("SMISMEMBER", S, unpack(list, from, to))
    local added, count = {}, 0
    for i = from, to do
      if known[i - from + 1] == 0 then count = count + 1; added[count] = list[i] end
    end
    if count > 0 and redis.call("SADD", S, unpack(added)) < count then
      -- an id given twice in this step: keep its first
      local once, kept = {}, {}
      for _, id in ipairs(added) do
        if not once[id] then once[id] = true; kept[#kept + 1] = id end
      end
      added, count = kept, #kept
    end
    for i = 1, count do out[n + i] = added[i] end
    n = n + count
  end
  return out
end

local function push_failures(entries)
  if #entries == 0 then return end
  redis.call("LPUSH", F, unpack(entries))
  redis.call("LTRIM", F, 0, FAILURES_KEPT - 1)
  expire_all()
end

-- Returns the work items left after it.
local function remove_item(item)
  local left = redis.call("ZCARD", W) - (redis.call("ZSCORE", W, item) and 1 or 0)
  redis.call("HDEL", B, item, item .. ":r", item .. ":st")
  redis.call("ZREM", W, item)
  return left
end

local commands = {}

function commands.create(a)
  if redis.call("EXISTS", KEYS[6]) == 0 then return 0 end
  local ttl, grace, now = tonumber(a[2]), tonumber(a[3]), now_ms()
  for i = 4, #a, 2 do redis.call("HSET", P, a[i], a[i + 1]) end
  save("fanout", {owner = "", attempt = 0, not_before = 0, takeovers = 0, gen = 0})
  redis.call("ZADD", W, now + grace, "fanout")
  redis.call("EXPIRE", P, ttl)
  expire_all()
  return 1
end

function commands.claim(a)
  local item, owner, lease, now = a[2], a[3], tonumber(a[4]), now_ms()
  local st = state(item)
  if not st then return {"done"} end
  local score = tonumber(redis.call("ZSCORE", W, item) or "0")
  if st.owner ~= "" and st.owner ~= owner and score > now then return {"busy"} end
  if st.not_before > now then return {"early", tostring(st.not_before)} end
  if st.owner ~= "" and st.owner ~= owner then st.takeovers = st.takeovers + 1 end
  st.owner = owner
  save(item, st)
  redis.call("ZADD", W, now + lease, item)
  if item == "fanout" and redis.call("HGET", P, "status") == "queued" then
    redis.call("HSET", P, "status", "fanning_out")
  end
  local reply = {"ok", st.attempt, st.takeovers, st.gen,
                 redis.call("HGET", B, item) or "", redis.call("HGET", B, item .. ":r") or ""}
  if #a > 4 then  -- fields of the publish too (what it asks for): the worker's next round trip
    local fields = redis.call("HMGET", P, unpack(a, 5, #a))
    for i = 1, #a - 4 do reply[6 + i] = fields[i] end
  end
  return reply
end

function commands.renew(a)
  local owner, lease, now = a[2], tonumber(a[3]), now_ms()
  local kept = {}
  for i = 4, #a do
    local st = state(a[i])
    if st and st.owner == owner then
      redis.call("ZADD", W, now + lease, a[i])
      kept[#kept + 1] = a[i]
    end
  end
  return kept
end

-- The fan-out is over: every batch is made.
local function end_fanout()
  local left = remove_item("fanout")
  redis.call("UNLINK", S)  -- a big set is freed in the background, not while every client waits
  redis.call("HSET", P, "fanout_done", "1")
  if redis.call("HGET", P, "status") ~= "done" then redis.call("HSET", P, "status", "delivering") end
  check_done(left)
end

-- The reply of a fan-out step that made batch `made` (nil: none). When the
-- step finished the walk and the publish has no other batch, the fan-out
-- ends here and the walker delivers that batch itself: it holds it from now
-- (a small publish takes one call, not a walk, a "fanned" and a "claim").
local function step_reply(finished, made, owner, lease, now)
  if finished and tonumber(redis.call("HGET", P, "batches_total")) == (made and 1 or 0) then
    end_fanout()
    if not made then return {"ended"} end
    local st = state(made)
    st.owner = owner
    save(made, st)
    redis.call("ZADD", W, now + lease, made)
    return {"held", made, redis.call("HGET", B, made)}
  end
  local out = {finished and 1 or 0}
  if made then out[2] = made; out[3] = 0 end
  return out
end

-- Walk the targeted interests from where the fan-out stopped ("walk" =
-- "interest index:SSCAN cursor") until about batch_size unseen devices make
-- one batch, or the interests are exhausted.
function commands.walk(a)
  local owner, lease, size, grace, now = a[2], tonumber(a[3]), tonumber(a[4]), tonumber(a[5]), now_ms()
  if not held("fanout", state("fanout"), owner, now) then return {"lost"} end
  local pos = split(redis.call("HGET", P, "walk") or "1:0", ":")
  local index, cursor = tonumber(pos[1]), pos[2]
  local ids = {}
  local rounds = 0
  while index <= #KEYS - 5 and #ids < size and rounds < 50 do
    local reply = redis.call("SSCAN", KEYS[5 + index], cursor, "COUNT", size)
    cursor = reply[1]
    unseen(reply[2], 1, #reply[2], ids)
    if cursor == "0" then index = index + 1 end
    rounds = rounds + 1
  end
  redis.call("HSET", P, "walk", index .. ":" .. cursor)
  redis.call("ZADD", W, now + lease, "fanout")
  return step_reply(index > #KEYS - 5, #ids > 0 and new_batch(ids, grace, now) or nil, owner, lease, now)
end

-- The next ids of a users fan-out (computed by the worker); "last" 1 when
-- no more follow.
function commands.add(a)
  local owner, lease, grace, last, now = a[2], tonumber(a[3]), tonumber(a[4]), a[5] == "1", now_ms()
  if not held("fanout", state("fanout"), owner, now) then return {"lost"} end
  local ids = unseen(a, 6, #a, {})
  return step_reply(last, #ids > 0 and new_batch(ids, grace, now) or nil, owner, lease, now)
end

function commands.fanned(a)
  if not held("fanout", state("fanout"), a[2], now_ms()) then return "lost" end
  end_fanout()
  return redis.call("HGET", P, "status")
end

-- Record answers of a batch. Groups, from a[first] on: "delivered",
-- "removed", "skipped" and "gone" (no longer a target: deleted meanwhile)
-- list ids; "failed" lists "id<TAB>reason"; "retry" lists ids to try again.
-- A device not in the batch's lists any more was answered before (by a
-- worker that lost its lease, say) and is not counted again.
local function record(item, a, first)
  local untried, retry = {}, {}
  local untried_list = split(redis.call("HGET", B, item) or "", ",")
  local retry_list = split(redis.call("HGET", B, item .. ":r") or "", ",")
  for _, id in ipairs(untried_list) do untried[id] = true end
  for _, id in ipairs(retry_list) do retry[id] = true end
  local counts = {targeted = 0, delivered = 0, removed = 0, failed = 0, skipped = 0}
  local retry_added = {}
  local failures = {}
  local i = first
  while i <= #a do
    local name, n = a[i], tonumber(a[i + 1])
    if name ~= "retry" and name ~= "gone" and not TERMINAL[name] then
      return redis.error_reply("unknown answer group " .. name)
    end
    for j = i + 2, i + 1 + n do
      local entry = a[j]
      local id = entry
      if name == "failed" then id = split(entry, "\t")[1] end
      local was_untried, was_retry = untried[id], retry[id]
      if was_untried or was_retry then
        untried[id] = nil
        if was_untried and name ~= "gone" then counts.targeted = counts.targeted + 1 end
        if name == "retry" then
          if not was_retry then retry[id] = true; retry_added[#retry_added + 1] = id end
        else
          retry[id] = nil
          if name == "gone" then
            if was_retry then counts.skipped = counts.skipped + 1 end
          else
            counts[name] = counts[name] + 1
            if name == "failed" then failures[#failures + 1] = entry end
          end
        end
      end
    end
    i = i + 2 + n
  end
  local left, again = {}, {}
  for _, id in ipairs(untried_list) do if untried[id] then left[#left + 1] = id end end
  for _, id in ipairs(retry_list) do if retry[id] then again[#again + 1] = id end end
  for _, id in ipairs(retry_added) do again[#again + 1] = id end
  if redis.call("HEXISTS", B, item .. ":st") == 1 then
    redis.call("HSET", B, item, table.concat(left, ","), item .. ":r", table.concat(again, ","))
  end
  for name, n in pairs(counts) do
    if n ~= 0 then redis.call("HINCRBY", P, name, n) end
  end
  push_failures(failures)
end

-- One chunk's answers, recorded before the next chunk is sent.
function commands.answer(a)
  local item, owner, lease, now = a[2], a[3], tonumber(a[4]), now_ms()
  local err = record(item, a, 5)
  if err then return err end
  if held(item, state(item), owner, now) then redis.call("ZADD", W, now + lease, item) end
  return 1
end

-- The holder ends its run of a batch, with the answers of its last chunk
-- (groups as for "answer"): done when nothing is left; else the retry ids
-- get another attempt after `delay` ms, or fail with `reason` once
-- max_attempts is reached. "done" says whether the whole publish is.
function commands.finish(a)
  local item, owner, max_attempts, delay, grace, reason = a[2], a[3], tonumber(a[4]), tonumber(a[5]), tonumber(a[6]), a[7]
  local now = now_ms()
  local err = record(item, a, 8)
  if err then return err end
  local st = state(item)
  if not st then return {"done", redis.call("HGET", P, "status") == "done" and 1 or 0} end
  if not held(item, st, owner, now) then return {"lost"} end
  local untried = redis.call("HGET", B, item) or ""
  local retry = split(redis.call("HGET", B, item .. ":r") or "", ",")
  if untried ~= "" then return redis.error_reply("finish with untried devices left in batch " .. item) end
  if #retry > 0 and st.attempt + 1 < max_attempts then
    st.owner, st.attempt, st.not_before, st.gen = "", st.attempt + 1, now + delay, st.gen + 1
    save(item, st)
    redis.call("HINCRBY", P, "retried", #retry)
    redis.call("ZADD", W, st.not_before + grace, item)
    return {"retry", tostring(st.not_before), st.gen}
  end
  if #retry > 0 then
    local failures = {}
    for _, id in ipairs(retry) do failures[#failures + 1] = id .. "\t" .. reason end
    redis.call("HINCRBY", P, "failed", #retry)
    push_failures(failures)
  end
  local left = remove_item(item)
  redis.call("HINCRBY", P, "batches_done", 1)
  check_done(left)
  return {"done", redis.call("HGET", P, "status") == "done" and 1 or 0}
end

function commands.release(a)
  local item, owner, grace, now = a[2], a[3], tonumber(a[4]), now_ms()
  local st = state(item)
  if not st then return {"busy"} end
  local score = tonumber(redis.call("ZSCORE", W, item) or "0")
  if owner ~= "" then
    if st.owner ~= owner then return {"busy"} end
  elseif st.owner ~= "" then
    if score > now then return {"busy"} end
    st.takeovers = st.takeovers + 1
  end
  st.owner, st.gen = "", st.gen + 1
  save(item, st)
  redis.call("ZADD", W, math.max(now, st.not_before) + grace, item)
  return {"ok", tostring(st.not_before), st.gen}
end

function commands.due(a)
  local now = now_ms()
  local status = redis.call("HGET", P, "status")
  if not status then return {"gone"} end
  local out, stale = {status}, {}
  local left = redis.call("ZCARD", W)
  for _, item in ipairs(redis.call("ZRANGEBYSCORE", W, "-inf", now, "LIMIT", 0, 1000)) do
    local st = state(item)
    if st then
      for _, v in ipairs({item, st.owner, tostring(st.not_before), st.gen, st.takeovers}) do out[#out + 1] = v end
    else
      stale[#stale + 1] = item
    end
  end
  if #stale > 0 then redis.call("ZREM", W, unpack(stale)) end
  check_done(left - #stale)
  return out
end

function commands.bump(a)
  local grace, now = tonumber(a[2]), now_ms()
  for i = 3, #a do
    local st = state(a[i])
    if st and st.owner == "" then redis.call("ZADD", W, math.max(now, st.not_before) + grace, a[i]) end
  end
  return 1
end

-- An operator requeued an undelivered job: its devices become a new batch
-- (once per token), no longer counted as targeted and failed nor listed
-- among the failures.
function commands.reopen(a)
  local token, grace, now = a[2], tonumber(a[3]), now_ms()
  if redis.call("EXISTS", P) == 0 then return {} end
  if redis.call("HSETNX", P, "reopened:" .. token, 1) == 0 then return {} end
  local ids, reopened = {}, {}
  for i = 4, #a do ids[#ids + 1] = a[i]; reopened[a[i]] = true end
  redis.call("HINCRBY", P, "failed", -#ids)
  redis.call("HINCRBY", P, "targeted", -#ids)
  local kept, entries = {}, redis.call("LRANGE", F, 0, -1)
  for _, entry in ipairs(entries) do
    if not reopened[split(entry, "\t")[1]] then kept[#kept + 1] = entry end
  end
  if #kept > 0 and #kept < #entries then  -- rewritten in place, never deleted and made again
    redis.call("RPUSH", F, unpack(kept))
    redis.call("LTRIM", F, -#kept, -1)
  end
  if redis.call("HGET", P, "status") == "done" then
    redis.call("HSET", P, "status", "delivering")
    redis.call("HDEL", P, "finished_at")
  end
  local n = new_batch(ids, grace, now)
  expire_all()
  if #kept == 0 and #entries > 0 then redis.call("DEL", F) end  -- last: nothing touches F after it
  return {n, 0}
end

return function(keys, ARGV)
  KEYS, P, W, B, F, S = keys, keys[1], keys[2], keys[3], keys[4], keys[5]
  local command = commands[ARGV[1]]
  if command == nil then return redis.error_reply("unknown publish.lua command " .. tostring(ARGV[1])) end
  return command(ARGV)
end
