-- Gateway rate limits per registered server (README "The MCP gateway"). NULL means the default.
-- Enforced in the memory of each Worker isolate, so nothing is counted here: only the configuration.

ALTER TABLE mcp_servers ADD COLUMN rate_limit_user INTEGER;            -- requests per user per window
ALTER TABLE mcp_servers ADD COLUMN rate_limit_user_window_s INTEGER;   -- that window, in seconds
ALTER TABLE mcp_servers ADD COLUMN rate_limit_server INTEGER;          -- requests of all users together per window
ALTER TABLE mcp_servers ADD COLUMN rate_limit_server_window_s INTEGER; -- that window, in seconds
