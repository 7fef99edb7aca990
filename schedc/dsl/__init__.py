"""The scheduling DSL: grammar, parser, AST and semantic analysis."""
