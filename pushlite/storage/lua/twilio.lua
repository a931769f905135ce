-- Twilio-style device registrations, atomically with their indexes and with
-- the user's hold on the device.
--
-- KEYS[1] the instance hash (the instance must exist)
-- KEYS[2] {iid}:twilio:regs    registration id -> JSON
-- KEYS[3] {iid}:twilio:tokens  token digest -> registration id
-- KEYS[4..6] (delete) the device's bucket, the user's bucket, the device
--         token index ({iid}:tokens)
-- ARGV[1] command; the rest as each command says.
-- Returns {status, ...}; status "ok", "exists", "no_instance" or "not_found".

local FS, LS = "\31", "\30"
local REGS, TOKENS  -- set by each call

-- create: registration id, token digest, JSON. Stores it unless the token
-- already has a registration (a concurrent create won): then its id.
local function create(id, digest, json)
  local other = redis.call("HGET", TOKENS, digest)
  if other and redis.call("HEXISTS", REGS, other) == 1 then return { "exists", other } end
  redis.call("HSET", REGS, id, json)
  redis.call("HSET", TOKENS, digest, id)
  return { "ok", id }
end

-- forget: registration id, token digest. Drops the record and its token entry
-- (only if the entry still names it).
local function forget(id, digest)
  redis.call("HDEL", REGS, id)
  if redis.call("HGET", TOKENS, digest) == id then redis.call("HDEL", TOKENS, digest) end
end

-- The device record layout is records.py's (and device.lua's): fields joined
-- by \31, lists inside a field by \30; USERS is field 4, INTERESTS 5, ALIAS 8.
local USERS, INTERESTS, ALIAS = 4, 5, 8

local function split(s, sep)
  local out, start = {}, 1
  if s == nil or s == "" then return out end
  while true do
    local i = string.find(s, sep, start, true)
    if not i then out[#out + 1] = string.sub(s, start); return out end
    out[#out + 1] = string.sub(s, start, i - 1)
    start = i + 1
  end
end

local function list_remove(key, field, id, sep)
  local kept = {}
  for _, v in ipairs(split(redis.call("HGET", key, field) or "", sep)) do
    if v ~= id then kept[#kept + 1] = v end
  end
  if #kept == 0 then redis.call("HDEL", key, field)
  else redis.call("HSET", key, field, table.concat(kept, sep)) end
end

-- delete: registration id, token digest, device id, user id. Detaches the user from the device; deletes the device when nothing holds
-- it any more (no user, no interest), since nothing could reach it.
local function delete(id, digest, device, user, bucket, ubucket, tidx)
  if redis.call("HEXISTS", REGS, id) == 0 then return { "not_found" } end
  forget(id, digest)
  local raw = redis.call("HGET", bucket, device)
  if not raw then return { "ok", 0 } end
  local rec = split(raw, FS)
  for f = #rec + 1, ALIAS do rec[f] = "" end
  local users = {}
  for _, u in ipairs(split(rec[USERS], LS)) do if u ~= user then users[#users + 1] = u end end
  list_remove(ubucket, user, device, ",")
  if #users == 0 and rec[INTERESTS] == "" then
    if rec[ALIAS] ~= "" then list_remove(tidx, rec[ALIAS], device, ",") end
    redis.call("HDEL", bucket, device)
    return { "ok", 1 }
  end
  rec[USERS] = table.concat(users, LS)
  redis.call("HSET", bucket, device, table.concat(rec, FS))
  return { "ok", 0 }
end

return function(KEYS, ARGV)
  REGS, TOKENS = KEYS[2], KEYS[3]
  if redis.call("EXISTS", KEYS[1]) == 0 then return { "no_instance" } end
  local command = ARGV[1]
  if command == "create" then return create(ARGV[2], ARGV[3], ARGV[4]) end
  if command == "forget" then forget(ARGV[2], ARGV[3]); return { "ok" } end
  if command == "delete" then return delete(ARGV[2], ARGV[3], ARGV[4], ARGV[5], KEYS[4], KEYS[5], KEYS[6]) end
  return { "unknown_command" }
end
