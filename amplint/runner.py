"""One ``amplint check`` run: configuration, files, project context, cache and parallel checking.

The flow: the configuration gives the settings, the excludes and the project root; every file of
the project takes part in the cheap project pass (which files run in reduced precision), also
when only some files are checked (pre-commit passes the changed ones), and is read again only
when its stat changed (:mod:`amplint.stat_cache`); then each checked file is looked up in the
cache by its content, its context, the settings and amplint's version, and the misses go
through :func:`amplint.engine.lint_source`, in worker processes when there are enough.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from amplint import config as config_module
from amplint import context_cache, walk_cache
from amplint.borrowing import Borrowed, borrowed, given_key
from amplint.cache import Cache, digest
from amplint.config import Config, ConfigError
from amplint.files import Exclude, discover, exclusion, shown_path
from amplint.findings import Finding, parse_error
from amplint.project import NO_CONTEXT, Context, ModuleFacts
from amplint.settings import MIN_DIMENSION, Settings
from amplint.stat_cache import Known, StatCache, stat_of

# Below this many files to check, worker processes cost more than they save.
PARALLEL_THRESHOLD = 16
STDIN = "-"


@dataclass(frozen=True)
class Request:
    """What the command line asks for; ``None`` and empty values leave the choice to the file."""

    paths: tuple[str, ...] = (".",)
    config_file: str | None = None
    select: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    alignment: int | None = None
    min_dimension: int | None = None
    assume_amp: str | None = None
    use_cache: bool = True
    jobs: int | None = None
    stdin: str | None = None
    stdin_filename: str | None = None


@dataclass
class Outcome:
    """The findings of a run, how many files were checked, problems with the given paths and
    what excluded them all."""

    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    problems: list[str] = field(default_factory=list)
    # When every given path is excluded: one line per path naming the exclude (not an error).
    excluded: list[str] = field(default_factory=list)


def _resolve(selectors: Sequence[str], where: str | None) -> set[str]:
    from amplint.codes import resolve

    try:
        return resolve(part for value in selectors for part in value.split(","))
    except ValueError as error:
        if where is None:
            raise
        raise ConfigError(f"{where}: {error}") from None


def settings_for(config: Config, request: Request) -> Settings:
    """Defaults, then the file, then the command line: each layer's ``select`` starts over,
    ``extend-select`` adds and ``ignore`` removes, so the command line always wins."""
    from amplint.settings import default_selection

    chosen = set(default_selection())
    file_key = f"{config.path}: [tool.amplint]" if config.path else None
    layers = (
        (config.select, config.extend_select, config.ignore, file_key),
        (request.select or None, request.extend_select, request.ignore, None),
    )
    for select, extend, ignore, where in layers:
        if select is not None:
            chosen = _resolve(select, where and f"{where} select")
        chosen |= _resolve(extend, where and f"{where} extend-select")
        chosen -= _resolve(ignore, where and f"{where} ignore")
    for pattern, selectors in config.per_file_ignores:  # report a typo before it is needed
        _resolve(selectors, f'{file_key} per-file-ignores "{pattern}"')

    return Settings(frozenset(chosen), *_values(config, request))


def _values(config: Config, request: Request) -> tuple[int, int, str | None]:
    """alignment, min_dimension and assume_amp: the command line, else the file, else defaults."""

    def pick(cli, from_file, default):
        return cli if cli is not None else from_file if from_file is not None else default

    return (
        pick(request.alignment, config.alignment, 8),
        pick(request.min_dimension, config.min_dimension, MIN_DIMENSION),
        pick(request.assume_amp, config.assume_amp, None),
    )


def settings_key(config: Config, request: Request) -> str:
    """Equal for equal effective settings, computed without loading the rules (nor libcst, a
    fifth of a second): the selection as each layer writes it, and the resolved values. A
    fully cached run never needs more."""
    return digest(
        "settings",
        [config.select, config.extend_select, config.ignore],
        [request.select or None, request.extend_select, request.ignore],
        _values(config, request),
    )


def excluder(config: Config) -> Exclude:
    """The ``exclude``/``extend-exclude`` pattern matching an absolute path (relative to the
    project root; only its name outside it), as a reason naming the key and the file."""
    keyed = [("exclude", p) for p in config.exclude or ()]
    keyed += [("extend-exclude", p) for p in config.extend_exclude]
    prefix = str(config.root.absolute()).rstrip(os.sep) + os.sep

    def excluded(path: str) -> str | None:
        if not keyed or path + os.sep == prefix:
            return None
        if path.startswith(prefix):
            relative = path[len(prefix) :].replace(os.sep, "/")
        else:
            relative = os.path.basename(path)
        for key, pattern in keyed:
            if relative and config_module.glob_matches(pattern, relative):
                return f"{key} {pattern!r} in {shown_path(str(config.path))}"
        return None

    return excluded


def _read_source(data: bytes, name: str):
    """Python source of a file's bytes (notebooks: their code cells) and the notebook, if any."""
    from amplint.engine import decode

    if not name.endswith(".ipynb"):
        return decode(data), None
    from amplint.notebooks import parse_notebook

    notebook = parse_notebook(data.decode("utf-8-sig"))
    return notebook.source, notebook


def lint_bytes(data: bytes, display: str, context: Context, settings: Settings) -> list[Finding]:
    """Findings for one file's bytes; undecodable files and broken notebooks are AMP000."""
    from amplint.engine import lint_source
    from amplint.notebooks import NotebookError

    try:
        source, notebook = _read_source(data, display)
    except (UnicodeDecodeError, SyntaxError, LookupError) as error:
        return [parse_error(display, f"cannot decode file: {error}")]
    except NotebookError as error:
        return [parse_error(display, str(error))]
    findings = lint_source(source, display, context, settings)
    if notebook is not None:
        findings = sorted(notebook.map_finding(f) if f.code != "AMP000" else f for f in findings)
    return findings


def _facts(
    data: bytes, name: str, parse: bool = True, borrowed: Borrowed = ()
) -> ModuleFacts | None:
    """The project facts of a file (outgoing None when ``parse`` is false and they need one;
    ``borrowed``: the other modules' constants it reads)."""
    from amplint.project import scan

    try:
        return scan(_read_source(data, name)[0], name, parse, borrowed)
    except Exception:  # an unreadable file only drops out of the project pass
        return None


def _cached_facts(cache: Cache, data: bytes, content: str, name: str) -> ModuleFacts | None:
    """A file's project facts, from the cache by its content when a parse found them before
    (a file touched but not changed, or read again within the racy window, needs no new
    parse); else what its text says, with what a switch turns on left to the workers."""
    stored = cache.get(_facts_key(content, name))
    if isinstance(stored, list):
        try:
            return ModuleFacts.from_json(stored)
        except (TypeError, ValueError):
            pass
    return _facts(data, name, parse=False)


def _facts_of(known: Known, path: str, name: str) -> ModuleFacts | None:
    """A file's facts as remembered; when the cache lost them (runs writing it at once, a
    damaged entry), what its text says now."""
    if known.facts is not None:
        return known.facts
    try:
        return _facts(Path(path).read_bytes(), name)
    except OSError:
        return None


def _facts_key(content: str, name: str) -> str:
    return digest("facts", content, name)


def _file_digest(path: str) -> str:
    """The digest of a file another one reads (a JSON configuration), "" when it is missing."""
    try:
        return digest(Path(path).read_bytes())
    except OSError:
        return ""


@dataclass(frozen=True)
class _Job:
    """One file to check in a worker, with what it needs to store its result in the cache."""

    path: str
    display: str
    context: Context
    settings: Settings
    content: str  # digest of the bytes the key was computed from
    key: str
    cache_top: str | None
    cache_version: str
    check: bool = True  # False: only the project facts are wanted
    facts: bool = False  # find the project facts too (one parse for both)


def _run_job(job: _Job) -> tuple[list[Finding], ModuleFacts | None]:
    """Read and check one file (and find its project facts, for a job that asks); cache the
    results unless the file changed since it was hashed."""
    try:
        data = Path(job.path).read_bytes()
    except OSError as error:
        return [parse_error(job.display, f"cannot read file: {error.strerror or error}")], None
    findings = lint_bytes(data, job.display, job.context, job.settings) if job.check else []
    facts = _facts(data, job.display, borrowed=job.context.borrowed) if job.facts else None
    if job.cache_top is not None and digest(data) == job.content:
        cache = Cache(Path(job.cache_top), job.cache_version)
        if job.check:
            cache.put(job.key, [f.to_dict() for f in findings])
        if facts is not None:
            cache.put(_facts_key(job.content, job.display), facts.to_json())
    return findings, facts


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def _run_jobs(jobs: list[_Job], workers: int) -> Iterable[tuple[list[Finding], ModuleFacts | None]]:
    if workers <= 1 or len(jobs) < PARALLEL_THRESHOLD:
        return map(_run_job, jobs)
    from concurrent.futures import ProcessPoolExecutor

    import libcst  # noqa: F401  (imported once here, inherited by forked workers)

    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)))
    with pool:
        # Small chunks: the few large files that need a parse must not all land in one chunk.
        return list(pool.map(_run_job, jobs, chunksize=max(1, len(jobs) // (workers * 32))))


def _start_paths(request: Request) -> list[str]:
    """The paths that locate the configuration and the project (stdin counts by its name)."""
    return [p for p in request.paths if p != STDIN] or [request.stdin_filename or "."]


def _project_root(config: Config, request: Request) -> Path | None:
    """Where the project pass reads every file: the configuration's folder or the git root."""
    if config.path is not None:
        return config.root
    return config_module.git_root(config_module.start_folder(_start_paths(request)))


def run(request: Request) -> Outcome:
    """Check what ``request`` asks for. Raises ConfigError for a bad configuration and
    ValueError for unknown rules on the command line."""
    config = config_module.resolve(_start_paths(request), request.config_file)
    exclude = excluder(config)
    outcome = Outcome()
    project = _project_root(config, request)
    # Excludes below the configuration's folder or the git root; else below the current one.
    exclude_root = project or Path.cwd()

    given = [p for p in request.paths if p != STDIN]
    discovery = discover(given, str(exclude_root), exclude) if given else None
    excluded = list(discovery.excluded) if discovery else []
    if discovery is not None:
        outcome.problems.extend(discovery.problems)
    checked: list[tuple[Path, str]] = list(discovery.files) if discovery else []
    stdin_path: Path | None = None
    stdin_display = request.stdin_filename or STDIN
    if STDIN in request.paths:
        stdin_path = Path(stdin_display).absolute()
        if request.stdin_filename:
            why = exclusion(request.stdin_filename, str(exclude_root), exclude)
            if why is not None:
                excluded.append((request.stdin_filename, why))
                stdin_path = None
    if excluded and len(excluded) == len(request.paths):  # pre-commit passes excluded files
        outcome.excluded = [f"{path}: not checked, excluded by {why}" for path, why in excluded]

    # The project's files by absolute path: plain strings, as this runs over all of them.
    everything = {str(path.absolute()): display for path, display in checked}
    # `amplint check .` at the project root has already walked the whole project.
    walked = (
        len(given) == 1 and project is not None and Path(given[0]).resolve() == project.resolve()
    )

    # Beside the configuration (or at the git root); without either in the current folder.
    cache = Cache.beside(project or Path.cwd(), config.cache_dir)
    if not request.use_cache:
        cache = Cache(None, cache.version)
    if project is not None and not walked:
        excludes = [config.exclude, config.extend_exclude, str(config.root.absolute())]
        for path, display in walk_cache.project_files(cache, str(project), exclude, excludes):
            everything.setdefault(path, display)

    # Every file's digest and project facts; files whose stat is unchanged are not read again.
    stat_cache = StatCache(cache, str(project or config.root))
    stdin_key = str(stdin_path) if stdin_path is not None else None
    digests: dict[str, str] = {}
    sizes: dict[str, int] = {}
    stats: dict[str, object] = {}
    known: dict[str, Known] = {}  # the files with facts
    for path, display in everything.items():
        if path == stdin_key:
            continue
        stat = stat_of(path)
        remembered = stat_cache.get(path, stat) if stat is not None else None
        if remembered is None:
            try:
                data = Path(path).read_bytes()
            except OSError:
                continue
            content = digest(data)
            remembered = stat_cache.put(
                path, stat, content, _cached_facts(cache, data, content, display)
            )
        digests[path] = remembered.content
        sizes[path] = stat[2] if stat is not None else 0
        stats[path] = stat
        if remembered.fingerprint:
            known[path] = remembered
    run_key = settings_key(config, request)
    settings: Settings | None = None
    top = str(cache.top) if cache.folder is not None else None
    workers = request.jobs or available_cores()

    # What the files whose text names a switch turn on needs their parse: done in the workers,
    # which check those files at once (in the usual case, nothing turns precision on in them
    # from elsewhere; when something does, they are checked again below).
    to_check = {str(path.absolute()) for path, _ in checked}
    first: dict[str, tuple[str, list[Finding]]] = {}
    # a module naming a switch is read again when the constants it reads of others changed
    tables, stale = _borrowing(cache, known, everything)
    parsing = [path for path, fact in known.items() if fact.pending or path in stale]
    if parsing:
        settings = settings_for(config, request)
        jobs = []
        for path in parsing:
            display = everything[path]
            own = Context(borrowed=tables.get(path, ()))
            key = digest("findings", digests[path], display, own, run_key)
            check = path in to_check
            jobs.append(
                _Job(
                    path,
                    display,
                    own,
                    settings,
                    digests[path],
                    key,
                    top,
                    cache.version,
                    check=check,
                    facts=True,
                )
            )
        jobs.sort(key=lambda job: -sizes.get(job.path, 0))
        for job, (found, new) in zip(jobs, _run_jobs(jobs, workers)):
            path = job.path
            if new is None:
                old = _facts_of(known[path], path, job.display)
                new = ModuleFacts(old.imports if old is not None else ())
            known[path] = stat_cache.put(path, stats[path], digests[path], new)  # type: ignore[arg-type]
            if job.check:
                first[path] = (job.key, found)
    # With a project root every run walks all of it, so files not seen have left it; without
    # one, runs over different paths share the entry and each adds what it read.
    if project is not None:
        stat_cache.keep_only(set(everything))
    stat_cache.save()
    stdin_data = request.stdin.encode("utf-8") if request.stdin is not None else None
    if stdin_key is not None and stdin_data is not None:  # it stands for the file on disk
        stdin_facts = _facts(stdin_data, stdin_display)
        if stdin_facts is not None:
            known[stdin_key] = Known.of(None, "", stdin_facts)
            tables, _ = _borrowing(cache, known, everything)
            if stdin_key in tables:
                again = _facts(stdin_data, stdin_display, borrowed=tables[stdin_key])
                known[stdin_key] = Known.of(None, "", again or stdin_facts)
    wanted = set(to_check)
    if stdin_key is not None:
        wanted.add(stdin_key)
    contexts = context_cache.contexts(
        cache,
        {path: fact.fingerprint for path, fact in known.items()},
        lambda: {
            path: found
            for path, fact in known.items()
            if (found := _facts_of(fact, path, everything.get(path, stdin_display))) is not None
        },
        digests,
        _file_digest,
        wanted,
    )

    misses = []
    for path, display in checked:
        absolute = str(path.absolute())
        context = _with_borrowed(contexts.get(absolute, NO_CONTEXT), tables.get(absolute, ()))
        content = digests.get(absolute, "")  # unreadable: the job reports it
        key = digest("findings", content, display, context, run_key)
        if absolute in first and first[absolute][0] == key:
            outcome.findings.extend(first[absolute][1])
            continue
        stored = cache.get(key) if content else None
        if stored is not None:
            outcome.findings.extend(Finding(**item) for item in stored)
        else:
            misses.append((absolute, display, context, content, key))
    wants_stdin = stdin_key is not None and stdin_data is not None
    if settings is None and (misses or wants_stdin):
        settings = settings_for(config, request)
    jobs = [_Job(*miss[:3], settings, *miss[3:], top, cache.version) for miss in misses]
    jobs.sort(key=lambda job: -sizes.get(job.path, 0))  # largest first: balanced workers
    for findings, _ in _run_jobs(jobs, workers):
        outcome.findings.extend(findings)
    outcome.files = len(checked)

    if wants_stdin:
        context = _with_borrowed(contexts.get(stdin_key, NO_CONTEXT), tables.get(stdin_key, ()))
        outcome.findings.extend(lint_bytes(stdin_data, stdin_display, context, settings))
        outcome.files += 1

    outcome.findings = sorted(_per_file_ignores(outcome.findings, config))
    return outcome


def _borrowing(
    cache: Cache, known: dict[str, Known], names: dict[str, str]
) -> tuple[dict[str, Borrowed], set[str]]:
    """The constants of other modules each module reads (see :mod:`amplint.borrowing`), and
    the modules whose facts were read with other values (to read again). A function of every
    module's facts: remembered under their fingerprints, so a run whose facts are all as before
    decodes none of them."""
    key = digest("borrowed", sorted((path, fact.fingerprint) for path, fact in known.items()))
    stored = cache.get(key)
    if isinstance(stored, list) and len(stored) == 2:
        try:
            tables = {path: tuple((n, v) for n, v in values) for path, values in stored[0].items()}
            return tables, set(stored[1])
        except (AttributeError, TypeError, ValueError):  # damaged: work them out again
            pass
    facts = {
        Path(path): found
        for path, fact in known.items()
        if (found := _facts_of(fact, path, names.get(path, path))) is not None
    }
    found_tables = borrowed(facts)
    tables = {str(path): values for path, values in found_tables.items()}
    stale = {
        str(path)
        for path, fact in facts.items()
        if fact.borrows and fact.given != given_key(found_tables.get(path, ()))
    }
    cache.put(key, [tables, sorted(stale)])
    return tables, stale


def _with_borrowed(context: Context, values: Borrowed) -> Context:
    """A file's context with the other modules' constants it reads."""
    return dataclasses.replace(context, borrowed=values) if values else context


def _per_file_ignores(findings: Iterable[Finding], config: Config) -> Iterable[Finding]:
    """Drop findings that ``per-file-ignores`` turns off (AMP000 is never dropped)."""
    if not config.per_file_ignores:
        yield from findings
        return
    ignored: dict[str, set[str]] = {}
    for finding in findings:
        if finding.path not in ignored:
            selectors = config.ignored_for(finding.path)
            where = f"{config.path}: [tool.amplint] per-file-ignores"
            ignored[finding.path] = _resolve(selectors, where) if selectors else set()
        if finding.code == "AMP000" or finding.code not in ignored[finding.path]:
            yield finding
