-- The device record and the id lists, for every library (scripts.py puts this
-- file before each of them).
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

-- The record of device `id` in `bucket` as a table of NFIELDS strings, or nil.
local function read_record(bucket, id)
  local raw = redis.call("HGET", bucket, id)
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
  redis.call("HSET", bucket, id, table.concat(rec, FS, 1, n))
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
