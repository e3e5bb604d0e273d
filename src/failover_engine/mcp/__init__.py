"""The MCP server of failover-engine (`failover-mcp`); see server.py and docs/mcp.md."""
