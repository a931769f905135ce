-- Every change to a device, atomically: the record in its bucket, the interest
-- sets, the user buckets and the token index move together or not at all.
--
-- Every key comes from Python (keys.py) in KEYS, never built here:
-- KEYS[1]  the instance hash (the instance must exist)
-- KEYS[2]  the token index ({instance}:tokens)
-- KEYS[3..2+n]  the keys ARGV[3..2+n] name: "d<device id>" its bucket,
--          "i<interest>" its set, "u<user id>" the user's bucket
-- ARGV[1]  command; ARGV[2] n; ARGV[3+n..] the command's arguments.
--
-- Some keys are known only once a record is read (its interests, its users,
-- the devices the token index names). A call that meets one it was not given
-- writes nothing and answers {"need", entries...}; the caller calls again
-- with them (devices.py). Writes are buffered (records.lua), so nothing is
-- written before it is known that every key is at hand.
-- Returns {status, ...}; status "ok", "no_instance", "not_found", "already",
-- "user_cap", "interest_cap" or "need".

-- Set by each call: the token index, the declared keys by name, the
-- command's arguments, and what it needed but was not given (nil: nothing).
local TIDX, DEV, INT, USR, A, NEEDED

local function declared(map, kind, name)
  local key = map[name]
  if not key then
    NEEDED = NEEDED or {}
    if not NEEDED[kind .. name] then
      NEEDED[kind .. name] = true
      NEEDED[#NEEDED + 1] = kind .. name
    end
  end
  return key
end

local function dkey(id) return declared(DEV, "d", id) end
local function ikey(name) return declared(INT, "i", name) end
local function ukey(user) return declared(USR, "u", user) end

local function load(id) return read_record(dkey(id), id) end

local function save(id, rec) write_record(dkey(id), id, rec) end

-- The device with this platform and token (and bundle, when given: a Matrix
-- pusher is identified by app_id + pushkey, and its bundle is the app_id).
-- The device of (platform, token): under its derived id, or under an id the
-- token index lists for it. Also says whether the derived id is taken.
local function find(derived, platform, token)
  local candidates = { derived }
  for _, v in ipairs(split(hget(TIDX, derived) or "", ",")) do
    candidates[#candidates + 1] = v
  end
  local derived_taken = false
  for _, id in ipairs(candidates) do
    local rec = load(id)
    if rec and id == derived then derived_taken = true end
    if rec and rec[PLATFORM] == platform and rec[TOKEN] == token then return id, rec, true end
  end
  return nil, nil, derived_taken
end

local function drop(id, rec)
  for _, name in ipairs(split(rec[INTERESTS], LS)) do srem(ikey(name), id) end
  for _, u in ipairs(split(rec[USERS], LS)) do list_remove(ukey(u), u, id) end
  if rec[ALIAS] ~= "" then list_remove(TIDX, rec[ALIAS], id) end
  hdel(dkey(id), id)
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

-- Find the device or create it; returns its id and record (saved).
local function upsert(derived, platform, env, token, bundle, meta, fresh, app)
  local id, rec, derived_taken = find(derived, platform, token)
  if id then
    if env ~= "" then rec[ENV] = env end
    if bundle ~= "" then rec[BUNDLE] = bundle end
    if meta ~= "" then rec[META] = meta end
    if app ~= "" then rec[APP] = app end
    save(id, rec)
    return id, rec
  end
  id = derived
  local alias = ""
  if derived_taken then
    id, alias = fresh, derived
    list_add(TIDX, derived, id)
  end
  rec = { platform, env, token, "", "", bundle, meta, alias, "", app }
  save(id, rec)
  return id, rec
end

-- register: derived id, platform, environment, token, bundle, metadata, fresh id, app
function commands.register()
  local derived, platform, env, token, bundle, meta, fresh, app = A[1], A[2], A[3], A[4], A[5], A[6], A[7], A[8]
  local id, rec = upsert(derived, platform, env, token, bundle, meta, fresh, app or "")
  return { "ok", id, rec[INTERESTS] }
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

-- token: id, platform, new derived id, new token, new platform ("" = the
-- same). The device keeps its id, interests and users. A device that already
-- held the new token is merged into this one (the token can only reach one
-- install).
function commands.token()
  local id, derived, token = A[1], A[3], A[4]
  local rec = target()
  if not rec then return { "not_found" } end
  local platform = A[5] ~= "" and A[5] or rec[PLATFORM]
  if rec[TOKEN] == token and rec[PLATFORM] == platform then return { "ok" } end
  local other, other_rec = find(derived, platform, token)
  if other then drop(other, other_rec) end
  if rec[ALIAS] ~= "" then list_remove(TIDX, rec[ALIAS], id) end
  rec[PLATFORM] = platform
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
  local key = ukey(user)
  if #split(hget(key, user) or "", ",") >= cap then return { "user_cap" } end
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
    if not keep[n] then srem(ikey(n), id) end
  end
  for _, n in ipairs(wanted) do
    if not had[n] then sadd(ikey(n), id) end
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
  for i = 3, #A do gone[A[i]] = true; srem(ikey(A[i]), id) end
  local kept = {}
  for _, n in ipairs(split(rec[INTERESTS], LS)) do if not gone[n] then kept[#kept + 1] = n end end
  rec[INTERESTS] = table.concat(kept, LS)
  save(id, rec)
  return { "ok" }
end

-- delete_user: user id. Deletes every device of the user (Beams customer API).
function commands.delete_user()
  local user = A[1]
  local ids = split(hget(ukey(user), user) or "", ",")
  for _, id in ipairs(ids) do
    local rec = load(id)
    if rec then drop(id, rec) end
  end
  hdel(ukey(user), user)
  return { "ok", #ids }
end

-- --- Devices owned by users (Discord-style devices, Matrix pushers, channels) ---
-- A device may belong to several users here (one phone, several accounts); each
-- user holds at most `cap` devices, checked before anything is written.

local function has_user(rec, user)
  for _, u in ipairs(split(rec[USERS], LS)) do if u == user then return true end end
  return false
end

local function user_count(user)
  return #split(hget(ukey(user), user) or "", ",")
end

-- Adds the user to the record (the caller saves it).
local function attach(id, rec, user)
  list_add(ukey(user), user, id)
  local users = split(rec[USERS], LS)
  users[#users + 1] = user
  rec[USERS] = table.concat(users, LS)
end

-- register_for_user: user, cap, then per device: derived id, platform,
-- environment, token, fresh id. Registers every device and attaches the user,
-- all or nothing. Returns { "ok", id... }.
function commands.register_for_user()
  local user, cap = A[1], tonumber(A[2])
  local specs, seen, adding = {}, {}, 0
  for i = 3, #A, 5 do
    local s = { A[i], A[i + 1], A[i + 2], A[i + 3], A[i + 4] }
    specs[#specs + 1] = s
    if not seen[s[2] .. FS .. s[4]] then
      seen[s[2] .. FS .. s[4]] = true
      local id, rec = find(s[1], s[2], s[4])
      if not (id and has_user(rec, user)) then adding = adding + 1 end
    end
  end
  if adding > 0 and user_count(user) + adding > cap then return { "user_cap" } end
  local out = { "ok" }
  for _, s in ipairs(specs) do
    local id, rec = upsert(s[1], s[2], s[3], s[4], "", "", s[5], "")
    if not has_user(rec, user) then attach(id, rec, user); save(id, rec) end
    out[#out + 1] = id
  end
  return out
end

-- unregister_for_user: derived id, platform, token, user. Detaches the user;
-- deletes the device when no user is left. A device that is not the user's is
-- left alone. Returns { "ok", "deleted" | "detached" | "none" }.
function commands.unregister_for_user()
  local derived, platform, token, user = A[1], A[2], A[3], A[4]
  local id, rec = find(derived, platform, token)
  if not id or not has_user(rec, user) then return { "ok", "none" } end
  local kept = {}
  for _, u in ipairs(split(rec[USERS], LS)) do if u ~= user then kept[#kept + 1] = u end end
  list_remove(ukey(user), user, id)
  if #kept == 0 then drop(id, rec); return { "ok", "deleted" } end
  rec[USERS] = table.concat(kept, LS)
  save(id, rec)
  return { "ok", "detached" }
end

-- --- Matrix pushers: one record per (user, app id, pushkey) ---
-- Each pusher lives under an id derived from (user, app id, pushkey) and is
-- listed in the token index under the "shared" id derived from (app id,
-- pushkey), so the pushers of every user for one app id + pushkey are found
-- together. A record stored before pushers were per user (under the shared
-- id, or aliased to it) may hold several users: it keeps working for them,
-- and a user who sets or deletes their pusher is split off it.

-- The pushers of (app id, pushkey): { {id, rec}, ... }.
local function pushers_of(shared, platform, pushkey, app_id)
  local out = {}
  local candidates = { shared }
  for _, v in ipairs(split(hget(TIDX, shared) or "", ",")) do candidates[#candidates + 1] = v end
  for _, id in ipairs(candidates) do
    local rec = load(id)
    if rec and rec[PLATFORM] == platform and rec[TOKEN] == pushkey and rec[BUNDLE] == app_id then
      out[#out + 1] = { id, rec }
    end
  end
  return out
end

-- Removes the user from a record other users hold too (and saves it).
local function detach(id, rec, user)
  local kept = {}
  for _, u in ipairs(split(rec[USERS], LS)) do if u ~= user then kept[#kept + 1] = u end end
  list_remove(ukey(user), user, id)
  rec[USERS] = table.concat(kept, LS)
  save(id, rec)
end

-- set_pusher: own id, shared id, platform, pushkey, app id, metadata, fresh
-- id, user, append ("1": keep the other users' pushers), cap. Creates or
-- updates the user's pusher; without append, every other pusher of the app
-- id + pushkey is deleted. A new pusher split off an older shared record
-- keeps its channels. Returns { "ok", id }.
function commands.set_pusher()
  local own, shared, platform, pushkey, app_id, meta, fresh, user, append, cap =
    A[1], A[2], A[3], A[4], A[5], A[6], A[7], A[8], A[9], tonumber(A[10])
  local found = pushers_of(shared, platform, pushkey, app_id)
  local mine, shared_with_me = nil, {}
  for _, p in ipairs(found) do
    if p[2][USERS] == user then mine = p
    elseif has_user(p[2], user) then shared_with_me[#shared_with_me + 1] = p end
  end
  if not mine and #shared_with_me == 0 and user_count(user) >= cap then return { "user_cap" } end
  local inherited = shared_with_me[1] and { shared_with_me[1][2][INTERESTS], shared_with_me[1][2][DISABLED] }
  for _, p in ipairs(shared_with_me) do detach(p[1], p[2], user) end
  if append ~= "1" then
    for _, p in ipairs(found) do if p ~= mine then drop(p[1], p[2]) end end
  end
  if mine then
    mine[2][META] = meta
    save(mine[1], mine[2])
    return { "ok", mine[1] }
  end
  local id = own
  if load(own) then id = fresh end
  list_add(TIDX, shared, id)
  local rec = { platform, "", pushkey, "", "", app_id, meta, shared, "", "" }
  if inherited then
    rec[INTERESTS], rec[DISABLED] = inherited[1], inherited[2]
    for _, name in ipairs(split(rec[INTERESTS], LS)) do sadd(ikey(name), id) end
  end
  attach(id, rec, user)
  save(id, rec)
  return { "ok", id }
end

-- delete_pusher: shared id, platform, pushkey, app id, user. Deletes the
-- user's pusher (detaches the user from an older shared record); other
-- users' pushers are left alone. Returns { "ok", how many }.
function commands.delete_pusher()
  local shared, platform, pushkey, app_id, user = A[1], A[2], A[3], A[4], A[5]
  local n = 0
  for _, p in ipairs(pushers_of(shared, platform, pushkey, app_id)) do
    if p[2][USERS] == user then drop(p[1], p[2]); n = n + 1
    elseif has_user(p[2], user) then detach(p[1], p[2], user); n = n + 1 end
  end
  return { "ok", n }
end

-- detach_user: user id, platform code of pushers. Detaches the user from
-- every device of theirs and forgets the user; a device nothing holds any
-- more (no user, no interest) is deleted, and so is a pusher left without a
-- user (a pusher is one user's). Returns { "ok", devices deleted }.
function commands.detach_user()
  local user, pusher = A[1], A[2]
  local deleted = 0
  for _, id in ipairs(split(hget(ukey(user), user) or "", ",")) do
    local rec = load(id)
    if rec then
      local kept = {}
      for _, u in ipairs(split(rec[USERS], LS)) do if u ~= user then kept[#kept + 1] = u end end
      rec[USERS] = table.concat(kept, LS)
      if #kept == 0 and (rec[INTERESTS] == "" or rec[PLATFORM] == pusher) then
        drop(id, rec)
        deleted = deleted + 1
      else
        save(id, rec)
      end
    end
  end
  hdel(ukey(user), user)
  return { "ok", deleted }
end

-- set_channels: user, cap, token, n, n x (platform, device or derived id),
-- then (name, "1" enabled | "0" disabled) pairs. Applies the channels to every
-- device of the user with that token: an enabled channel is an interest, a
-- disabled one is not and is remembered in the record's disabled list.
function commands.set_channels()
  local user, cap, token, n = A[1], tonumber(A[2]), A[3], tonumber(A[4])
  local found = {}
  for i = 5, 4 + 2 * n, 2 do
    local id, rec = find(A[i + 1], A[i], token)
    if id and has_user(rec, user) then found[#found + 1] = { id, rec } end
  end
  if #found == 0 then return { "not_found" } end
  local on, off = {}, {}
  for i = 5 + 2 * n, #A, 2 do
    if A[i + 1] == "1" then on[A[i]] = true; off[A[i]] = nil else off[A[i]] = true; on[A[i]] = nil end
  end
  local plans = {}
  for _, f in ipairs(found) do
    local interests, disabled = {}, {}
    for _, name in ipairs(split(f[2][INTERESTS], LS)) do if not off[name] then interests[#interests + 1] = name end end
    for _, name in ipairs(split(f[2][DISABLED], LS)) do if not on[name] then disabled[#disabled + 1] = name end end
    local added, muted = {}, {}
    for name in pairs(on) do added[#added + 1] = name end
    for name in pairs(off) do muted[#muted + 1] = name end
    interests, disabled = sorted_union(interests, added), sorted_union(disabled, muted)
    if #interests > cap or #disabled > cap then return { "interest_cap" } end
    plans[#plans + 1] = { f[1], f[2], interests, disabled }
  end
  for _, p in ipairs(plans) do
    local id, rec = p[1], p[2]
    local had = {}
    for _, name in ipairs(split(rec[INTERESTS], LS)) do had[name] = true end
    for name in pairs(off) do if had[name] then srem(ikey(name), id) end end
    for name in pairs(on) do if not had[name] then sadd(ikey(name), id) end end
    rec[INTERESTS] = table.concat(p[3], LS)
    rec[DISABLED] = table.concat(p[4], LS)
    save(id, rec)
  end
  return { "ok" }
end

return function(KEYS, ARGV)
  TIDX, DEV, INT, USR, A, NEEDED = KEYS[2], {}, {}, {}, {}, nil
  local n = tonumber(ARGV[2])
  for i = 1, n do
    local entry = ARGV[2 + i]
    local kind = string.byte(entry, 1)
    local map = kind == 100 and DEV or (kind == 105 and INT or USR)  -- "d", "i", "u"
    map[string.sub(entry, 2)] = KEYS[2 + i]
  end
  for i = 3 + n, #ARGV do A[#A + 1] = ARGV[i] end
  if redis.call("EXISTS", KEYS[1]) == 0 then return { "no_instance" } end
  begin()
  local reply = commands[ARGV[1]]()
  if NEEDED then
    local out = { "need" }
    for _, entry in ipairs(NEEDED) do out[#out + 1] = entry end
    return out
  end
  commit()
  return reply
end
