"""``python -m tijeras.mcp``: the MCP server over stdio."""

from .server import main

main()
