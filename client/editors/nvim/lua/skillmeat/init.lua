-- skillmeat.nvim: drift of SkillMeat artifacts in Neovim, from `smctl lsp`.
--
-- Starts one `smctl lsp` client and attaches it to buffers in profile roots (`.claude`,
-- `.codex`, `.gemini`, `.cursor`, `.agents`, or any folder holding a
-- `.skillmeat-deployed.toml`) and in SkillMeat's collections folder. Diagnostics, hover
-- and code actions come from the server; this file adds the commands (:SkillmeatDrift,
-- :SkillmeatDiff, :SkillmeatPull, :SkillmeatPush, :SkillmeatMerge, :SkillmeatUndo,
-- :SkillmeatSnapshot) and a statusline component.
--
-- Works on Neovim 0.7 (`vim.lsp.start_client`) and current releases (`vim.lsp.start`).

local M = {}

local defaults = {
  -- The smctl executable (the language server is `smctl lsp`).
  smctl = 'smctl',
  -- Profile roots whose buffers get the server even without a deployment file yet.
  profile_roots = { '.claude', '.codex', '.gemini', '.cursor', '.agents' },
  -- SkillMeat's home; its `collections` folder is watched too.
  skillmeat_home = nil,
  -- Attach to matching buffers automatically.
  auto_attach = true,
}

M.config = vim.deepcopy(defaults)
-- Last `skillmeat/status` notification: { connected, drifted, workspaceDrifted }.
M.status = nil
M.client_id = nil

local uv = vim.loop

local function home_dir()
  local h = M.config.skillmeat_home or vim.env.SKILLMEAT_HOME
  if h == nil or h == '' then
    h = (vim.env.HOME or '') .. '/.skillmeat'
  end
  return (vim.fn.fnamemodify(h, ':p'):gsub('/$', ''))
end

local function exists(path)
  return uv.fs_stat(path) ~= nil
end

--- Whether the file `path` belongs where SkillMeat artifacts live.
function M.is_artifact_path(path)
  if path == nil or path == '' or path:match('^%a[%w+.-]*://') then
    return false
  end
  path = vim.fn.fnamemodify(path, ':p')
  local collections = home_dir() .. '/collections/'
  if path:sub(1, #collections) == collections then
    return true
  end
  local dir = vim.fn.fnamemodify(path, ':h')
  while dir ~= nil and dir ~= '' and dir ~= '/' do
    local name = vim.fn.fnamemodify(dir, ':t')
    for _, root in ipairs(M.config.profile_roots) do
      if name == root then
        return true
      end
    end
    if exists(dir .. '/.skillmeat-deployed.toml') then
      return true
    end
    local parent = vim.fn.fnamemodify(dir, ':h')
    if parent == dir then
      break
    end
    dir = parent
  end
  return false
end

local function client()
  if M.client_id == nil then
    return nil
  end
  return vim.lsp.get_client_by_id(M.client_id)
end

-- `client:request` on Neovim 0.11+, `client.request` before.
local function request(c, method, params, handler, bufnr)
  if vim.fn.has('nvim-0.11') == 1 then
    return c:request(method, params, handler, bufnr)
  end
  return c.request(method, params, handler, bufnr)
end

local function notify(msg, level)
  vim.notify('skillmeat: ' .. msg, level or vim.log.levels.INFO)
end

-- Reloads the unmodified buffers of the client after a command wrote files.
local function reload_buffers()
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(b) and not vim.bo[b].modified and vim.b[b].skillmeat then
      vim.api.nvim_buf_call(b, function()
        vim.cmd('silent! edit')
      end)
    end
  end
end

local handlers = {
  ['skillmeat/status'] = function(_, result)
    M.status = result
    pcall(vim.cmd, 'redrawstatus')
  end,
  -- Neovim 0.7 has no handler for window/showDocument: open the document in a split.
  ['window/showDocument'] = function(_, result)
    local path = vim.uri_to_fname(result.uri)
    vim.schedule(function()
      vim.cmd('split ' .. vim.fn.fnameescape(path))
    end)
    return { success = true }
  end,
  -- Commands run from code actions answer here: files may have changed on disk.
  ['workspace/executeCommand'] = function(err, result)
    if err == nil and type(result) == 'table' and result.operation then
      vim.schedule(reload_buffers)
    end
  end,
}

local function config()
  return {
    name = 'skillmeat',
    cmd = { M.config.smctl, 'lsp' },
    root_dir = vim.fn.getcwd(),
    handlers = handlers,
  }
end

--- Attaches the server to buffer `bufnr` (starting it when needed).
function M.attach(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  vim.b[bufnr].skillmeat = true
  if vim.lsp.start then
    M.client_id = vim.lsp.start(config(), {
      bufnr = bufnr,
      reuse_client = function(c, conf)
        return c.name == conf.name
      end,
    })
    return M.client_id
  end
  if client() == nil then
    M.client_id = vim.lsp.start_client(config())
  end
  if M.client_id then
    vim.lsp.buf_attach_client(bufnr, M.client_id)
  end
  return M.client_id
end

local function maybe_attach(args)
  local bufnr = args.buf
  if vim.bo[bufnr].buftype ~= '' then
    return
  end
  if M.is_artifact_path(vim.api.nvim_buf_get_name(bufnr)) then
    M.attach(bufnr)
  end
end

--- Runs server command `name` on the current buffer's artifact.
function M.execute(name, extra)
  local c = client()
  local bufnr = vim.api.nvim_get_current_buf()
  if c == nil then
    notify('no smctl lsp is running for this buffer (is it inside a profile root?)', vim.log.levels.WARN)
    return
  end
  local arg = extra or { uri = vim.uri_from_bufnr(bufnr) }
  request(c, 'workspace/executeCommand', { command = name, arguments = { arg } }, function(err, result)
    if err then
      notify(err.message or tostring(err), vim.log.levels.ERROR)
      return
    end
    if type(result) == 'table' and result.operation then
      reload_buffers()
    end
  end, bufnr)
end

local severity = {
  error = 'E',
  conflict = 'W',
  removed = 'W',
  missing = 'W',
  modified = 'I',
  outdated = 'I',
}

-- The line (1-based) of `artifact_path`'s record in a deployment file.
local function record_line(file, artifact_path)
  local ok, lines = pcall(vim.fn.readfile, file)
  if not ok then
    return 1
  end
  local last_header = 1
  for i, l in ipairs(lines) do
    if l:match('^%s*%[%[deployed%]%]') then
      last_header = i
    end
    if l:find('artifact_path = "' .. artifact_path .. '"', 1, true) then
      return last_header
    end
  end
  return 1
end

--- The quickfix items of `smctl drift --format json` output.
function M.drift_items(json)
  local items = {}
  for _, a in ipairs(json.artifacts or {}) do
    local kind = a.drift_type
    if kind ~= 'in_sync' and kind ~= 'added' then
      local root = a.project .. '/' .. a.profile_root
      local file = root .. '/' .. a.artifact_path
      local lnum = 1
      if exists(file .. '/SKILL.md') then
        file = file .. '/SKILL.md'
      elseif not exists(file) or uv.fs_stat(file).type == 'directory' then
        file = root .. '/.skillmeat-deployed.toml'
        lnum = record_line(file, a.artifact_path)
      end
      local text = a.name .. ': ' .. kind
      if a.recommendation and a.recommendation ~= '' and a.recommendation ~= 'none' then
        text = text .. ' (' .. a.recommendation .. ')'
      end
      if a.error and a.error ~= '' then
        text = text .. ': ' .. a.error
      end
      table.insert(items, { filename = file, lnum = lnum, col = 1, text = text, type = severity[kind] or 'I' })
    end
  end
  return items
end

--- :SkillmeatDrift [PROJECT] — the quickfix list from `smctl drift --format json`.
function M.drift(project)
  local cmd = { M.config.smctl, 'drift', '--format', 'json' }
  if project and project ~= '' then
    table.insert(cmd, vim.fn.fnamemodify(project, ':p'))
  end
  local out = vim.fn.system(cmd)
  if vim.v.shell_error ~= 0 and vim.v.shell_error ~= 1 then
    notify(vim.trim(out), vim.log.levels.ERROR)
    return
  end
  local ok, json = pcall(vim.fn.json_decode, out)
  if not ok or type(json) ~= 'table' then
    notify('smctl drift did not answer with JSON', vim.log.levels.ERROR)
    return
  end
  if project and project ~= '' then
    for _, a in ipairs(json.artifacts or {}) do
      a.project = a.project or (vim.fn.fnamemodify(project, ':p'):gsub('/$', ''))
    end
  end
  local items = M.drift_items(json)
  vim.fn.setqflist({}, ' ', { title = 'skillmeat drift', items = items })
  if #items == 0 then
    notify('no drift')
  else
    vim.cmd('copen')
  end
  return items
end

--- A statusline component: "skillmeat: 2 drifted", "skillmeat: offline", or "".
function M.statusline()
  local s = M.status
  if s == nil then
    return ''
  end
  if not s.connected then
    return 'skillmeat: offline'
  end
  local n = s.workspaceDrifted or s.drifted or 0
  if n == 0 then
    return 'skillmeat: in sync'
  end
  return 'skillmeat: ' .. n .. ' drifted'
end

local commands = {
  SkillmeatDiff = 'skillmeat.showDiff',
  SkillmeatPull = 'skillmeat.pull',
  SkillmeatPush = 'skillmeat.push',
  SkillmeatMerge = 'skillmeat.merge',
  SkillmeatUndo = 'skillmeat.undo',
  SkillmeatSnapshot = 'skillmeat.snapshot',
}

--- Configures the plugin; `opts` overrides the defaults above.
function M.setup(opts)
  M.config = vim.tbl_deep_extend('force', vim.deepcopy(defaults), opts or {})
  vim.api.nvim_create_user_command('SkillmeatDrift', function(a)
    M.drift(a.args)
  end, { nargs = '?', complete = 'dir', desc = 'Drift of SkillMeat artifacts in the quickfix list' })
  for name, cmd in pairs(commands) do
    vim.api.nvim_create_user_command(name, function()
      M.execute(cmd)
    end, { desc = 'smctl lsp: ' .. cmd })
  end
  vim.api.nvim_create_user_command('SkillmeatAttach', function()
    M.attach(0)
  end, { desc = 'Attach smctl lsp to this buffer' })
  if M.config.auto_attach then
    local group = vim.api.nvim_create_augroup('skillmeat', { clear = true })
    vim.api.nvim_create_autocmd({ 'BufReadPost', 'BufNewFile' }, {
      group = group,
      callback = maybe_attach,
    })
    for _, b in ipairs(vim.api.nvim_list_bufs()) do
      if vim.api.nvim_buf_is_loaded(b) then
        maybe_attach({ buf = b })
      end
    end
  end
end

return M
