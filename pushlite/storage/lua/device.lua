-- Every change to a device, atomically: the record in its bucket, the interest
-- sets, the user buckets and the token index move together or not at all.
--
-- KEYS[1]  the instance hash (the instance must exist)
-- KEYS[2]  the bucket of the device (or user) the command names (declared for
--          Cluster; every key shares the {instance} hash tag)
-- ARGV[1]  command; ARGV[2..5] key prefixes from keys.script_prefixes();
-- ARGV[6..] the command's arguments.
-- Returns {status, ...}; status "ok", "no_instance", "not_found", "already",
-- "user_cap" or "interest_cap".

local FS, LS = "\31", "\30"
local unpack = unpack or table.unpack
local DPFX, IPFX, UPFX, TIDX = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local A = {}
for i = 6, #ARGV do A[#A + 1] = ARGV[i] end

-- Record fields (records.py): platform, environment, token, users, interests,
-- bundle, metadata, alias (the derived id it is indexed under, or ""),
-- disabled (channels set to disabled), app (the app name a registration gave).
-- Empty fields after ALIAS are not stored.
local PLATFORM, ENV, TOKEN, USERS, INTERESTS, BUNDLE, META, ALIAS = 1, 2, 3, 4, 5, 6, 7, 8
local DISABLED, APP, NFIELDS = 9, 10, 10

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

local function dkey(id) return DPFX .. string.sub(id, 1, 3) end

local function ubucket(u)
  local h = 0
  for i = 1, #u do h = (h * 31 + string.byte(u, i)) % 1000000007 end
  return UPFX .. string.format("%03x", h % 4096)
end

local function load(id)
  local raw = redis.call("HGET", dkey(id), id)
  if not raw then return nil end
  local rec = {}
  local start = 1
  for f = 1, NFIELDS do
    if start > #raw + 1 then rec[f] = ""
    else
      local i = string.find(raw, FS, start, true)
      if not i then rec[f] = string.sub(raw, start); start = #raw + 2
      else rec[f] = string.sub(raw, start, i - 1); start = i + 1 end
    end
  end
  return rec
end

local function save(id, rec)
  local n = NFIELDS
  while n > ALIAS and (rec[n] or "") == "" do n = n - 1 end
  for f = 1, n do rec[f] = rec[f] or "" end
  redis.call("HSET", dkey(id), id, table.concat(rec, FS, 1, n))
end

-- Comma-separated id lists (user buckets, token index).
local function list_remove(key, field, id)
  local ids = split(redis.call("HGET", key, field) or "", ",")
  local kept = {}
  for _, v in ipairs(ids) do if v ~= id then kept[#kept + 1] = v end end
  if #kept == 0 then redis.call("HDEL", key, field)
  else redis.call("HSET", key, field, table.concat(kept, ",")) end
end

local function list_add(key, field, id)
  local cur = redis.call("HGET", key, field)
  if not cur or cur == "" then redis.call("HSET", key, field, id)
  else redis.call("HSET", key, field, cur .. "," .. id) end
end

local function find(derived, platform, token)
  local candidates = { derived }
  for _, v in ipairs(split(redis.call("HGET", TIDX, derived) or "", ",")) do
    candidates[#candidates + 1] = v
  end
  for _, id in ipairs(candidates) do
    local rec = load(id)
    if rec and rec[PLATFORM] == platform and rec[TOKEN] == token then return id, rec end
  end
  return nil, nil
end

local function drop(id, rec)
  for _, name in ipairs(split(rec[INTERESTS], LS)) do redis.call("SREM", IPFX .. name, id) end
  for _, u in ipairs(split(rec[USERS], LS)) do list_remove(ubucket(u), u, id) end
  if rec[ALIAS] ~= "" then list_remove(TIDX, rec[ALIAS], id) end
  redis.call("HDEL", dkey(id), id)
end

-- The device named by A[1] on platform A[2] ("" = any platform).
local function target()
  local rec = load(A[1])
  if rec and (A[2] == "" or rec[PLATFORM] == A[2]) then return rec end
  return nil
end

local function sorted_union(current, added)
  local seen, out = {}, {}
  for _, n in ipairs(current) do if not seen[n] then seen[n] = true; out[#out + 1] = n end end
  for _, n in ipairs(added) do if not seen[n] then seen[n] = true; out[#out + 1] = n end end
  table.sort(out)
  return out
end

local commands = {}

-- register: derived id, platform, environment, token, bundle, metadata, fresh id, app
function commands.register()
  local derived, platform, env, token, bundle, meta, fresh, app = unpack(A)
  app = app or ""
  local id, rec = find(derived, platform, token)
  if id then
    if env ~= "" then rec[ENV] = env end
    if bundle ~= "" then rec[BUNDLE] = bundle end
    if meta ~= "" then rec[META] = meta end
    if app ~= "" then rec[APP] = app end
    save(id, rec)
    return { "ok", id, rec[INTERESTS] }
  end
  id = derived
  local alias = ""
  if redis.call("HEXISTS", dkey(derived), derived) == 1 then
    id, alias = fresh, derived
    list_add(TIDX, derived, id)
  end
  save(id, { platform, env, token, "", "", bundle, meta, alias, "", app })
  return { "ok", id, "" }
end

-- delete: id, platform
function commands.delete()
  local rec = target()
  if not rec then return { "not_found" } end
  drop(A[1], rec)
  return { "ok" }
end

-- metadata: id, platform, metadata
function commands.metadata()
  local rec = target()
  if not rec then return { "not_found" } end
  rec[META] = A[3]
  save(A[1], rec)
  return { "ok" }
end

-- token: id, platform, new derived id, new token. A device that already held
-- the new token is merged into this one (the token can only reach one install).
function commands.token()
  local id, platform, derived, token = A[1], A[2], A[3], A[4]
  local rec = target()
  if not rec then return { "not_found" } end
  if rec[TOKEN] == token then return { "ok" } end
  local other, other_rec = find(derived, platform, token)
  if other then drop(other, other_rec) end
  if rec[ALIAS] ~= "" then list_remove(TIDX, rec[ALIAS], id) end
  rec[TOKEN] = token
  rec[ALIAS] = ""
  if derived ~= id then rec[ALIAS] = derived; list_add(TIDX, derived, id) end
  save(id, rec)
  return { "ok" }
end

-- user: id, platform, user id, exclusive ("1": at most one user), cap
function commands.user()
  local id, user, exclusive, cap = A[1], A[3], A[4] == "1", tonumber(A[5])
  local rec = target()
  if not rec then return { "not_found" } end
  local users = split(rec[USERS], LS)
  for _, u in ipairs(users) do if u == user then return { "ok" } end end
  if exclusive and #users > 0 then return { "already" } end
  local key = ubucket(user)
  if #split(redis.call("HGET", key, user) or "", ",") >= cap then return { "user_cap" } end
  list_add(key, user, id)
  users[#users + 1] = user
  rec[USERS] = table.concat(users, LS)
  save(id, rec)
  return { "ok" }
end

-- add_interests / set_interests: id, platform, cap, names...
local function write_interests(replace)
  local id, cap = A[1], tonumber(A[3])
  local rec = target()
  if not rec then return { "not_found" } end
  local names = {}
  for i = 4, #A do names[#names + 1] = A[i] end
  local current = split(rec[INTERESTS], LS)
  local wanted = sorted_union(replace and {} or current, names)
  if #wanted > cap then return { "interest_cap" } end
  local keep, had = {}, {}
  for _, n in ipairs(wanted) do keep[n] = true end
  for _, n in ipairs(current) do
    had[n] = true
    if not keep[n] then redis.call("SREM", IPFX .. n, id) end
  end
  for _, n in ipairs(wanted) do
    if not had[n] then redis.call("SADD", IPFX .. n, id) end
  end
  rec[INTERESTS] = table.concat(wanted, LS)
  save(id, rec)
  return { "ok" }
end

function commands.add_interests() return write_interests(false) end
function commands.set_interests() return write_interests(true) end

-- remove_interests: id, platform, names...
function commands.remove_interests()
  local id = A[1]
  local rec = target()
  if not rec then return { "not_found" } end
  local gone = {}
  for i = 3, #A do gone[A[i]] = true; redis.call("SREM", IPFX .. A[i], id) end
  local kept = {}
  for _, n in ipairs(split(rec[INTERESTS], LS)) do if not gone[n] then kept[#kept + 1] = n end end
  rec[INTERESTS] = table.concat(kept, LS)
  save(id, rec)
  return { "ok" }
end

-- delete_user: user id. Deletes every device of the user (Beams customer API).
function commands.delete_user()
  local user = A[1]
  local ids = split(redis.call("HGET", ubucket(user), user) or "", ",")
  for _, id in ipairs(ids) do
    local rec = load(id)
    if rec then drop(id, rec) end
  end
  redis.call("HDEL", ubucket(user), user)
  return { "ok", #ids }
end

if redis.call("EXISTS", KEYS[1]) == 0 then return { "no_instance" } end
return commands[ARGV[1]]()
