"""README.md and the click commands kept in step (as sqlite-utils' tests/test_docs.py).

- README's "`enrich run` options" table names every option of ``enrich run``, and
  nothing else;
- ``enrich check`` has every option of ``enrich run`` (a run's command line with its
  verb swapped is a check), and README's dry-run section names check's own options;
- every command and subcommand, found by walking the click group, has ``--help``
  with an example of itself;
- README's "Commands" table names every command, and each group's subcommands.

Options and commands added later are picked up from click: nothing here lists them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from enrich.cli import cli

README = Path(__file__).resolve().parent.parent / "README.md"

#: ``-o``, ``--output``, ``--no-cache`` in a table cell, not the ``-`` of ``x-y`` or ``--`` alone.
FLAG = re.compile(r"(?<![\w-])--?[A-Za-z][\w-]*")
#: ``--[no-]progress``, the short way to write a ``--progress/--no-progress`` pair.
NO_PAIR = re.compile(r"--\[no-\]([A-Za-z][\w-]*)")


# -- README --------------------------------------------------------------------------


def readme_section(title: str) -> list[str]:
    """The lines under the Markdown heading ``title``, up to the next heading."""
    lines = README.read_text(encoding="utf-8").splitlines()
    starts = [i for i, line in enumerate(lines) if re.fullmatch(r"#+\s+" + re.escape(title), line)]
    assert len(starts) == 1, f"README.md needs exactly one heading {title!r}; found {len(starts)}"
    section = []
    for line in lines[starts[0] + 1 :]:
        if line.startswith("#"):
            break
        section.append(line)
    return section


def table_rows(section: list[str]) -> list[list[str]]:
    """The cells of each body row of the first Markdown table in ``section``.

    An escaped ``\\|`` stays in its cell, as ``|``.
    """
    rows: list[list[str]] = []
    for line in section:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)]
        rows.append(cells[1:-1])  # what lies outside the first and last pipes
    assert len(rows) > 2, "no Markdown table (header, separator, rows) found"
    return rows[2:]


def documented_flags(cell: str) -> list[str]:
    """Every spelling of an option in a cell: ``-o, --output PATH`` → ``-o``, ``--output``.

    Also ``--cache PATH` / `--no-cache``, ``--progress/--no-progress`` and
    ``--[no-]progress``; metavars (``PATH``, ``text|json``) are not flags.
    """
    return FLAG.findall(NO_PAIR.sub(r"--\1 --no-\1", cell))


# -- click ---------------------------------------------------------------------------


def walk(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every command below ``group``, groups included, at any depth."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from walk(command, (*path, name))


def command_at(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        found = command.get_command(click.Context(command), name)
        assert found is not None, f"no command {' '.join(path)!r}"
        command = found
    return command


def spellings(command: click.Command) -> dict[str, list[str]]:
    """Each visible option of ``command`` by name → its spellings, the ``--no-`` side too.

    ``--help`` is click's own and not a parameter, so it is not in here.
    """
    return {
        str(param.name): [*param.opts, *param.secondary_opts]
        for param in command.params
        if isinstance(param, click.Option) and not param.hidden
    }


def help_examples(help_text: str) -> list[str]:
    """The lines of every ``Example:`` / ``Examples:`` block of a ``--help`` text.

    A block is the lines indented deeper than its header, up to the first that is not.
    """
    lines = help_text.splitlines()
    examples = []
    for i, line in enumerate(lines):
        if not re.fullmatch(r"\s*Examples?:\s*", line):
            continue
        indent = len(line) - len(line.lstrip())
        for following in lines[i + 1 :]:
            if not following.strip() or len(following) - len(following.lstrip()) <= indent:
                break
            examples.append(following.strip())
    return examples


COMMANDS = list(walk(cli))
RUN_TABLE = "`enrich run` options"
CHECK_SECTION = "A dry run, and the progress bar"


# -- (a) the run options table, both ways --------------------------------------------


@pytest.fixture(scope="module")
def run_table_flags() -> list[str]:
    """Every flag the options table spells, in its first column, in order."""
    rows = table_rows(readme_section(RUN_TABLE))
    return [flag for row in rows for flag in documented_flags(row[0])]


def test_every_run_option_is_in_the_readme_table(run_table_flags: list[str]) -> None:
    missing = [
        flag
        for flags in spellings(command_at(("run",))).values()
        for flag in flags
        if flag not in run_table_flags
    ]
    assert not missing, (
        f"README.md's {RUN_TABLE!r} table lacks {', '.join(missing)}: "
        "add a row (option | meaning | default | example) for each"
    )


def test_every_option_in_the_readme_table_is_a_run_option(run_table_flags: list[str]) -> None:
    run = command_at(("run",))
    known = {flag for flags in spellings(run).values() for flag in flags}
    known |= {flag for param in run.params for flag in param.opts}  # hidden ones may be shown
    help_option = run.get_help_option(click.Context(run))
    known |= set(help_option.opts if help_option else ())
    unknown = sorted({flag for flag in run_table_flags if flag not in known})
    assert not unknown, (
        f"README.md's {RUN_TABLE!r} table names {', '.join(unknown)}, which "
        "`enrich run --help` does not have: fix or remove those rows"
    )
    twice = sorted({flag for flag in run_table_flags if run_table_flags.count(flag) > 1})
    assert not twice, f"README.md's {RUN_TABLE!r} table names {', '.join(twice)} more than once"


# -- (a') enrich check: every run option, and its own ones in README --------------------


def test_every_run_option_is_a_check_option() -> None:
    run, check = spellings(command_at(("run",))), spellings(command_at(("check",)))
    missing = [
        flag for name, flags in run.items() for flag in flags if flag not in check.get(name, ())
    ]
    assert not missing, (
        f"`enrich check` lacks the run option(s) {', '.join(missing)}: check takes every "
        "run option (SPEC.md), so give both commands cli.py's one option list"
    )


def test_check_options_beyond_run_are_in_the_readme() -> None:
    run = {flag for flags in spellings(command_at(("run",))).values() for flag in flags}
    own = [
        flag
        for flags in spellings(command_at(("check",))).values()
        for flag in flags
        if flag not in run
    ]
    assert own, "the walk found no option of check's own (--json): is the test still right?"
    section = "\n".join(readme_section(CHECK_SECTION))
    unnamed = [flag for flag in own if f"`{flag}`" not in section]
    assert not unnamed, (
        f"README.md's {CHECK_SECTION!r} section does not name check's own option(s) "
        f"{', '.join(unnamed)}"
    )


# -- (b) --help with an example, for every command ------------------------------------


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    name = " ".join(("enrich", *path))
    examples = help_examples(result.output)
    assert any(line == name or line.startswith(name + " ") for line in examples), (
        f"`{name} --help` shows no example of {name}: give its docstring a block "
        f"'\\b / Examples: / {name} …' (found examples: {examples})"
    )


def test_the_walk_finds_the_commands_and_subcommands() -> None:
    # Guards the walk itself: without it an empty COMMANDS would check nothing.
    assert {("run",), ("check",), ("emulator",), ("cache",), ("cache", "stats")} <= set(COMMANDS)


# -- (c) the Commands table ----------------------------------------------------------


def test_the_commands_table_names_every_command() -> None:
    named: dict[str, set[str]] = {}  # command → the other words of its rows
    for row in table_rows(readme_section("Commands")):
        spelled = re.match(r"`enrich (\S+)([^`]*)`", row[0])
        assert spelled, f"README.md's Commands table: {row[0]!r} is not `enrich COMMAND …`"
        command, rest = spelled.groups()
        named.setdefault(command, set()).update(re.split(r"[\s|]+", rest))

    top = {path[0] for path in COMMANDS if not command_at(path[:1]).hidden}
    assert not top - named.keys(), (
        f"README.md's Commands table lacks {', '.join(sorted(top - named.keys()))}: "
        "add a row for each"
    )
    assert not named.keys() - top, (
        f"README.md's Commands table names {', '.join(sorted(named.keys() - top))}, "
        "which `enrich --help` does not list"
    )
    unnamed = [
        " ".join(path)
        for path in COMMANDS
        if len(path) == 2 and path[1] not in named[path[0]] and not command_at(path).hidden
    ]
    assert not unnamed, (
        f"README.md's Commands table does not name the subcommands {', '.join(unnamed)} "
        "in their group's row"
    )
