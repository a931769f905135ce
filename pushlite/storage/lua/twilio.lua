-- Twilio-style device registrations, atomically with their indexes and with
-- the user's hold on the device.
--
-- KEYS[1] the instance hash (the instance must exist)
-- KEYS[2] {iid}:twilio:regs    registration id -> JSON
-- KEYS[3] {iid}:twilio:tokens  token digest -> registration id
-- KEYS[4] (create) the apps set ({iid}:apps)
-- KEYS[4..6] (delete) the device's bucket, the user's bucket, the device
--         token index ({iid}:tokens)
-- ARGV[1] command; the rest as each command says.
-- Returns {status, ...}; status "ok", "exists", "changed", "no_instance" or
-- "not_found".

local INSTANCE, REGS, TOKENS  -- set by each call

-- create: registration id, token digest, JSON, app name. Stores it unless the
-- token already has a registration (a concurrent create won): then its id.
-- The app joins the apps set; the first app ever registered becomes the
-- instance's default, unless registrations made before pushlite kept apps are
-- still to be indexed (apps.py does that, picking the oldest one's app).
local function create(id, digest, json, app, apps)
  local other = hget(TOKENS, digest)
  if other and hget(REGS, other) then return { "exists", other } end
  if redis.call("HLEN", REGS) == 0 then hset(INSTANCE, "apps_indexed", "1") end
  hset(REGS, id, json)
  hset(TOKENS, digest, id)
  sadd(apps, app)
  if hget(INSTANCE, "apps_indexed") and not hget(INSTANCE, "default_app") then
    hset(INSTANCE, "default_app", app)
  end
  return { "ok", id }
end

-- replace: registration id, the JSON it had when read, the new JSON. Writes
-- the new one only if the record is still the one read.
local function replace(id, old, new)
  local current = hget(REGS, id)
  if not current then return { "not_found" } end
  if current ~= old then return { "changed" } end
  hset(REGS, id, new)
  return { "ok" }
end

-- forget: registration id, token digest. Drops the record and its token entry
-- (only if the entry still names it).
local function forget(id, digest)
  hdel(REGS, id)
  if hget(TOKENS, digest) == id then hdel(TOKENS, digest) end
end

-- delete: registration id, token digest, device id, user id. Detaches the user
-- from the device; deletes the device when nothing holds it any more (no user,
-- no interest), since nothing could reach it. The record is records.lua's.
local function delete(id, digest, device, user, bucket, ubucket, tidx)
  if not hget(REGS, id) then return { "not_found" } end
  forget(id, digest)
  local rec = read_record(bucket, device)
  if not rec then return { "ok", 0 } end
  local users = {}
  for _, u in ipairs(split(rec[USERS], LS)) do if u ~= user then users[#users + 1] = u end end
  list_remove(ubucket, user, device)
  if #users == 0 and rec[INTERESTS] == "" then
    if rec[ALIAS] ~= "" then list_remove(tidx, rec[ALIAS], device) end
    hdel(bucket, device)
    return { "ok", 1 }
  end
  rec[USERS] = table.concat(users, LS)
  write_record(bucket, device, rec)
  return { "ok", 0 }
end

local function dispatch(KEYS, ARGV)
  local command = ARGV[1]
  if command == "create" then return create(ARGV[2], ARGV[3], ARGV[4], ARGV[5], KEYS[4]) end
  if command == "replace" then return replace(ARGV[2], ARGV[3], ARGV[4]) end
  if command == "forget" then forget(ARGV[2], ARGV[3]); return { "ok" } end
  if command == "delete" then return delete(ARGV[2], ARGV[3], ARGV[4], ARGV[5], KEYS[4], KEYS[5], KEYS[6]) end
  return { "unknown_command" }
end

return function(KEYS, ARGV)
  INSTANCE, REGS, TOKENS = KEYS[1], KEYS[2], KEYS[3]
  if redis.call("EXISTS", INSTANCE) == 0 then return { "no_instance" } end
  begin()
  local reply = dispatch(KEYS, ARGV)
  commit()
  return reply
end
