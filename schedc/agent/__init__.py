"""Agent interfaces: `schedc mcp` (a Model Context Protocol server) and `schedc synthesize`
(an LLM tool-use loop). Both call the operations in `schedc.agent.operations`, which call the
same compiler, checks, verifier and repository functions as the command line. docs/agent.md.
"""
