"""`schedc completion bash`: a bash completion script for schedc, made from the commands' own
parsers, so it never lists an option schedc does not have or misses a new one.

It completes command names, `repo`'s subcommands, every option of the command (or subcommand)
being typed, and the values of options with a fixed set of choices (`--format human|json`,
`--workload NAME`, ...); anything else (a policy, a folder) falls back to file names.

    source <(schedc completion bash)           # this shell
    schedc completion bash > ~/.local/share/bash-completion/completions/schedc   # every shell

zsh reads it after `autoload -U +X bashcompinit && bashcompinit`.
"""

from __future__ import annotations

import argparse
import shlex

from schedc.cli.exit import Exit


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Print a completion script for SHELL on stdout: `source <(schedc completion bash)`, "
        "or save it as ~/.local/share/bash-completion/completions/schedc."
    )
    parser.add_argument("shell", choices=("bash",), help="the shell (bash; zsh via bashcompinit)")
    parser.set_defaults(func=run)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> tuple[list[str], dict[str, list[str]]]:
    """The parser's option strings, and the choices of those that take one of a fixed set."""
    words: list[str] = []
    choices: dict[str, list[str]] = {}
    for action in parser._actions:
        words += [s for s in action.option_strings if s.startswith("--") or len(s) == 2]
        if action.option_strings and action.choices is not None and action.nargs != 0:
            for option in action.option_strings:
                choices[option] = [str(c) for c in action.choices]
    return words, choices


_TOP = "schedc"  # the key before a command is typed (bash has no empty key)


def bash_script() -> str:
    """The completion script, from every command's parser (this imports every command)."""
    from schedc.cli import COMMANDS, add_command

    top = argparse.ArgumentParser(prog="schedc", add_help=False)
    sub = top.add_subparsers()
    commands = {name: add_command(sub, name) for name in COMMANDS}
    opts: dict[str, str] = {_TOP: "--help --version"}
    subs: dict[str, str] = {_TOP: " ".join(COMMANDS)}
    values: dict[str, str] = {}
    for name, parser in commands.items():
        nested = _subparsers(parser)
        for key, p in [(name, parser)] + [(f"{name} {n}", q) for n, q in nested.items()]:
            words, choices = _options(p)
            opts[key] = " ".join(dict.fromkeys(words))
            for option, options in choices.items():
                values[f"{key}|{option}"] = " ".join(options)
        if nested:
            subs[name] = " ".join(nested)

    def table(var: str, items: dict[str, str]) -> str:
        rows = "".join(f"    [{shlex.quote(k)}]={shlex.quote(v)}\n" for k, v in items.items())
        return f"declare -gA {var}=(\n{rows})\n"

    return (
        "# bash completion for schedc (made by `schedc completion bash`; do not edit)\n"
        + table("_schedc_opts", opts)
        + table("_schedc_subs", subs)
        + table("_schedc_values", values)
        + _FUNCTION
    )


# The key of the words typed so far: "schedc" (no command yet), "CMD", or "CMD SUB" for a
# command with subcommands. An option's value is never taken for a command: a word after an option
# that has choices is skipped.
_FUNCTION = r"""
_schedc() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local key=schedc word i
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if [[ $word == -* ]]; then
            continue
        elif [[ -n ${_schedc_values["$key|${COMP_WORDS[i-1]}"]+set} ]]; then
            continue
        elif [[ $key == schedc ]]; then
            key=$word
        elif [[ $key != *" "* && -n ${_schedc_subs[$key]+set} ]]; then
            key="$key $word"
        fi
    done
    if [[ -n ${_schedc_values["$key|$prev"]+set} ]]; then
        COMPREPLY=($(compgen -W "${_schedc_values["$key|$prev"]}" -- "$cur"))
    elif [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "${_schedc_opts[$key]}" -- "$cur"))
    elif [[ $key != *" "* && -n ${_schedc_subs[$key]+set} ]]; then
        COMPREPLY=($(compgen -W "${_schedc_subs[$key]}" -- "$cur"))
    else
        COMPREPLY=()
    fi
}
complete -o default -F _schedc schedc
"""


def run(args: argparse.Namespace) -> Exit:
    print(bash_script(), end="")
    return Exit.OK
