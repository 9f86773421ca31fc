-- Drives headless Neovim through the skillmeat plugin for the end-to-end test
-- (client/tests/editors.rs) and the latency benchmark (benches/editor_latency.rs).
--
-- Environment:
--   E2E_SMCTL       the smctl binary
--   E2E_FILE        the drifted project file to open (its project copy was edited)
--   E2E_COLLECTION  the collection copy of that file (changed from here, outside the editor)
--   E2E_OUT         where to write the results (JSON)
--   E2E_ROUNDS      collection changes to time (default 1); each one toggles the drift
--                   between modified and conflict
--   E2E_PULL        "1": finish with the pull code action
--
-- Results: { first = {message, lnum, severity, source}, latencies_ms = {...},
--            after_change = {message}, pulled = bool, pulled_text_ok = bool, error = ... }

local out = vim.env.E2E_OUT
local result = { latencies_ms = {} }

local function finish()
  vim.fn.writefile({ vim.fn.json_encode(result) }, out)
  vim.cmd('qa!')
end

local function fail(msg)
  result.error = msg
  finish()
end

local ok, err = pcall(function()
  local sm = require('skillmeat')
  sm.setup({ smctl = vim.env.E2E_SMCTL })
  vim.cmd('edit ' .. vim.fn.fnameescape(vim.env.E2E_FILE))
  local buf = vim.api.nvim_get_current_buf()

  local function ours()
    local list = {}
    for _, d in ipairs(vim.diagnostic.get(buf)) do
      if d.source == 'skillmeat' then
        table.insert(list, d)
      end
    end
    return list
  end
  local function wait(ms, pred)
    return vim.wait(ms, pred, 5)
  end

  if not wait(20000, function() return #ours() > 0 end) then
    return fail('no skillmeat diagnostic on the drifted file; status: ' .. vim.inspect(sm.status))
  end
  local d = ours()[1]
  result.first = { message = d.message, lnum = d.lnum, severity = d.severity, source = d.source }
  result.statusline = sm.statusline()

  local original = vim.fn.readfile(vim.env.E2E_COLLECTION)
  local changed = vim.deepcopy(original)
  changed[5] = '# Review, changed in the collection'
  local rounds = tonumber(vim.env.E2E_ROUNDS or '1')
  for i = 1, rounds do
    -- Odd rounds: the collection changes too (conflict); even rounds: it goes back (modified).
    local want = (i % 2 == 1) and 'conflict' or 'modified'
    local lines = (i % 2 == 1) and changed or original
    local t0 = vim.loop.hrtime()
    vim.fn.writefile(lines, vim.env.E2E_COLLECTION)
    local seen = wait(10000, function()
      local l = ours()
      return #l > 0 and l[1].message:find(': ' .. want .. ' ', 1, true) ~= nil
    end)
    if not seen then
      return fail('round ' .. i .. ': no ' .. want .. ' diagnostic; have ' .. vim.inspect(ours()))
    end
    table.insert(result.latencies_ms, (vim.loop.hrtime() - t0) / 1e6)
    result.after_change = { message = ours()[1].message }
  end

  if vim.env.E2E_PULL == '1' then
    -- Choose the "Pull" code action when Neovim asks (0.7 gives {client_id, action}
    -- pairs, current releases {action = ..., ctx = ...}).
    vim.ui.select = function(items, _, on_choice)
      for i, item in ipairs(items) do
        local action = item.action or item[2] or item
        if action.title and action.title:match('^Pull ') then
          return on_choice(item, i)
        end
      end
      fail('no Pull action among ' .. vim.inspect(items))
    end
    vim.api.nvim_win_set_cursor(0, { ours()[1].lnum + 1, 0 })
    vim.lsp.buf.code_action()
    local want = vim.fn.readfile(vim.env.E2E_COLLECTION)
    result.pulled = wait(10000, function()
      return #ours() == 0
    end)
    result.pulled_text_ok = wait(5000, function()
      return vim.deep_equal(vim.api.nvim_buf_get_lines(buf, 0, -1, false), want)
    end)
  end
  finish()
end)
if not ok then
  fail(tostring(err))
end
