"""Drives a Continuum MCP server with the official MCP Python SDK (`mcp` on PyPI), as an AI
agent would: lists the tools, calls some, and prints what happened as one JSON object.

    mcp_client.py stdio <continuum binary> [args…] -- <calls JSON>
    mcp_client.py http <url> <bearer token> -- <calls JSON>

<calls JSON> is a list of [tool, arguments]; each call's result (or its error) is reported.
"""

import json
import sys

import anyio
import httpx2
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client


async def exercise(session: ClientSession, calls: list) -> dict:
    await session.initialize()
    listed = await session.list_tools()
    report = {"tools": sorted(t.name for t in listed.tools), "calls": []}
    report["schemas"] = {t.name: {"input": t.input_schema, "output": t.output_schema} for t in listed.tools}
    for name, arguments in calls:
        progress = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append([value, total, message])

        try:
            result = await session.call_tool(name, arguments, progress_callback=on_progress)
            report["calls"].append({
                "tool": name,
                "is_error": bool(result.is_error),
                "structured": result.structured_content,
                "text": [c.text for c in result.content if c.type == "text"],
                "progress": progress,
            })
        except Exception as e:  # a protocol error (an unknown tool) ends up here
            report["calls"].append({"tool": name, "protocol_error": str(e)})
    return report


async def main() -> None:
    split = sys.argv.index("--")
    head, calls = sys.argv[1:split], json.loads(sys.argv[split + 1])
    if head[0] == "stdio":
        params = StdioServerParameters(command=head[1], args=head[2:], env=None)
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                report = await exercise(session, calls)
    else:
        url, token = head[1], head[2]
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=120.0)) as http:
            async with streamable_http_client(url, http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    report = await exercise(session, calls)
    print(json.dumps(report))


anyio.run(main)
