-- The device record, the id lists and buffered writes, for every library
-- (scripts.py puts this file before each of them).
--
-- A device is one string in its bucket hash: fields joined by US (\31), lists
-- inside a field joined by RS (\30). records.py is the other side of this
-- contract. Fields: platform, environment, token, users, interests, bundle,
-- metadata, alias (the derived id it is indexed under, or ""), disabled
-- (channels set to disabled), app (the app name a registration gave). Empty
-- fields after ALIAS are not stored.

local FS, LS = "\31", "\30"
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

-- Writes wait in a buffer until commit(), which makes them one command per
-- key and kind: additions before removals, and nothing after a removal that
-- may have deleted the key. (On a Cluster, a command on a key that a script
-- deleted earlier in the same call fails while the key's slot is moving to
-- another node, and the script stops half applied.) Reads see the buffer.
-- A nil key (one the caller did not declare) is neither read nor written.
local HBUF, SBUF

local function begin() HBUF, SBUF = {}, {} end

local function pending(buf, key)
  local t = buf[key]
  if not t then t = {}; buf[key] = t end
  return t
end

local function hget(key, field)
  if key == nil then return nil end
  local t = HBUF[key]
  if t and t[field] ~= nil then return t[field] or nil end
  return redis.call("HGET", key, field) or nil
end

local function hset(key, field, value) if key then pending(HBUF, key)[field] = value end end
local function hdel(key, field) if key then pending(HBUF, key)[field] = false end end
local function sadd(key, member) if key then pending(SBUF, key)[member] = true end end
local function srem(key, member) if key then pending(SBUF, key)[member] = false end end

local function commit()
  for key, fields in pairs(HBUF) do
    local set, del = {}, {}
    local n = 0
    for field, value in pairs(fields) do
      if value then n = n + 2; set[n - 1] = field; set[n] = value else del[#del + 1] = field end
    end
    if n == 2 then redis.call("HSET", key, set[1], set[2])
    elseif n > 0 then redis.call("HSET", key, unpack(set)) end
    if #del > 0 then redis.call("HDEL", key, unpack(del)) end
  end
  for key, members in pairs(SBUF) do
    local add, rem = {}, {}
    for member, on in pairs(members) do
      if on then add[#add + 1] = member else rem[#rem + 1] = member end
    end
    if #add > 0 then redis.call("SADD", key, unpack(add)) end
    if #rem > 0 then redis.call("SREM", key, unpack(rem)) end
  end
  HBUF, SBUF = nil, nil
end

-- The record of device `id` in `bucket` as a table of NFIELDS strings, or nil.
local function read_record(bucket, id)
  local raw = hget(bucket, id)
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

local function write_record(bucket, id, rec)
  local n = NFIELDS
  while n > ALIAS and (rec[n] or "") == "" do n = n - 1 end
  for f = 1, n do rec[f] = rec[f] or "" end
  hset(bucket, id, table.concat(rec, FS, 1, n))
end

-- Comma-separated id lists (user buckets, token index).
local function list_remove(key, field, id)
  local ids = split(hget(key, field) or "", ",")
  local kept = {}
  for _, v in ipairs(ids) do if v ~= id then kept[#kept + 1] = v end end
  if #kept == 0 then hdel(key, field)
  else hset(key, field, table.concat(kept, ",")) end
end

local function list_add(key, field, id)
  local cur = hget(key, field)
  if not cur or cur == "" then hset(key, field, id)
  else hset(key, field, cur .. "," .. id) end
end
