"""Behavior tables: read CSV/TSV or NWB, map a lab's column names, validate, type.

The behavior table (DESIGN section 3) is long format, one row per trial, with standard columns:
``subject``, ``session``, ``trial`` (0-based order), ``choice`` (0-based option) and ``reward`` for choice
tasks, ``cue`` (compound cues as ``"A+X"``) and ``reward`` for Pavlovian tasks, optional ``licks`` and event
times in seconds.  Every validator collects all the problems it finds and raises one InputError naming
the source and the column.
"""
from __future__ import annotations

import codecs
import csv
import os
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from dopa_rl.errors import InputError

__all__ = ["STANDARD_COLUMNS", "NUMERIC_COLUMNS", "TABLE_SUFFIXES", "parse_column_map", "ID_COLUMNS", "read_table",
           "normalize_behavior", "RARE_OPTION", "check_unique_trials", "expand_paths", "load_behavior"]

STANDARD_COLUMNS = ("subject", "session", "trial", "choice", "reward", "cue", "licks", "start_time",
                    "stop_time", "cue_time", "outcome_time")
NUMERIC_COLUMNS = ("reward", "licks", "start_time", "stop_time", "cue_time", "outcome_time")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".tab")


def parse_column_map(text: str | None, extra: Iterable[str] = ()) -> dict[str, str]:
    """``"subject=mouse_id,choice=lever"`` -> ``{"subject": "mouse_id", "choice": "lever"}``.

    ``extra``: more standard names a command accepts (``dopamine_cue`` ... for ``dopa-rl regress``)."""
    known = (*STANDARD_COLUMNS, *extra)
    if not text:
        return {}
    out: dict[str, str] = {}
    problems = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            problems.append(f"'{part}' is not STANDARD=YOURS")
            continue
        std, lab = (p.strip() for p in part.split("=", 1))
        if std not in known:
            problems.append(f"'{std}' is not a standard column ({', '.join(known)})")
        elif not lab:
            problems.append(f"'{std}=' names no column")
        elif std in out:
            problems.append(f"'{std}' is mapped twice ({out[std]}, {lab}); map one column to it (to combine "
                            f"columns, e.g. gain and loss, make one in pandas first: "
                            f"df['reward'] = df['gain'] - df['loss'])")
        else:
            out[std] = lab
    if problems:
        raise InputError("`columns`: " + "; ".join(problems) + " (example: `columns` subject=mouse_id,reward=water)")
    return out


ID_COLUMNS = ("subject", "session", "cue")


def read_table(path: str | os.PathLike, text_columns: Iterable[str] = ID_COLUMNS) -> pd.DataFrame:
    """Read a CSV/TSV file, sniffing the delimiter; clear errors for missing, empty or unparsable files.

    ``text_columns`` are read as text, not numbers, so ids like "007" and "7" stay two different animals.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a table")
    with open(path, "rb") as fh:
        raw = fh.read(65536)
    # Excel's "Unicode text" export is UTF-16 with a byte-order mark
    encoding = "utf-16" if raw[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else "utf-8-sig"
    try:
        # incremental decode: a multi-byte character cut at the end of the sample is not an error
        head = codecs.getincrementaldecoder(encoding)().decode(raw, final=len(raw) < 65536)
    except UnicodeDecodeError:
        if b"\x00" in raw:
            raise InputError(f"{path}: not a text table (is it a binary file? NWB files need the .nwb suffix)") from None
        encoding = "cp1252"  # not UTF-8 but text: Excel on Windows writes CSV in this code page ("µl", "é")
        head = raw.decode(encoding, errors="replace")
    if not head.strip():
        raise InputError(f"{path}: file is empty")
    try:
        sep = csv.Sniffer().sniff(head.splitlines()[0] if head.count("\n") < 1 else "\n".join(head.splitlines()[:20]),
                                  delimiters=",\t;| ").delimiter
    except csv.Error:
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
    # leading "# ..." lines (export notes written by acquisition software) are comments, not the header
    lines = head.splitlines()
    n_comment = 0
    while n_comment < len(lines) and (lines[n_comment].lstrip().startswith("#") or not lines[n_comment].strip()):
        n_comment += 1
    if n_comment:
        body = "\n".join(lines[n_comment:n_comment + 20])
        if not body.strip():
            raise InputError(f"{path}: the file holds only '#' comment lines, no table")
        try:
            sep = csv.Sniffer().sniff(body, delimiters=",\t;| ").delimiter
        except csv.Error:
            pass
    try:
        df = pd.read_csv(path, sep=sep, encoding=encoding, encoding_errors="replace", skipinitialspace=True,
                         dtype={c: str for c in text_columns}, skiprows=n_comment or None)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: file is empty") from None
    except (pd.errors.ParserError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise InputError(f"{path}: cannot parse as a table ({first})") from None
    df.columns = [str(c).strip() for c in df.columns]
    # rows of empty cells at the end (",,," left by spreadsheets) are not trials; rows inside still count
    if len(df) and df.iloc[-1].isna().all():
        filled = np.flatnonzero(df.notna().any(axis=1).to_numpy())
        df = df.iloc[: filled[-1] + 1 if filled.size else 0]
    if df.empty:
        raise InputError(f"{path}: the table has a header but no rows")
    return df


def _rows(mask: np.ndarray, limit: int = 3) -> str:
    idx = np.flatnonzero(mask)
    shown = ", ".join(str(i + 1) for i in idx[:limit])
    return f"row {shown}" + (f" and {len(idx) - limit} more" if len(idx) > limit else "")


def _numeric(df: pd.DataFrame, col: str, problems: list[str], label=lambda c: f"'{c}'") -> None:
    values = pd.to_numeric(df[col], errors="coerce")
    bad = values.isna().to_numpy() & df[col].notna().to_numpy()
    if bad.any():
        example = df[col].to_numpy()[np.flatnonzero(bad)[0]]
        problems.append(f"column {label(col)} has non-numeric values ({_rows(bad)}: {example!r})")
    df[col] = values.astype(float)


def _case_insensitive(df: pd.DataFrame, columns: Mapping[str, str] | None) -> dict[str, str]:
    """The column map completed with standard names written in another case (``Subject``, ``REWARD``), and
    mapped names matched regardless of case when only one column matches."""
    out = dict(columns or {})
    lower: dict[str, list[str]] = {}
    for c in df.columns:
        lower.setdefault(c.strip().lower(), []).append(c)
    for std, lab in list(out.items()):
        if lab not in df.columns and len(lower.get(lab.strip().lower(), [])) == 1:
            out[std] = lower[lab.strip().lower()][0]
    mapped = set(out.values())
    for std in STANDARD_COLUMNS:
        if std in out or std in df.columns:
            continue
        match = [c for c in lower.get(std, []) if c not in mapped]
        if len(match) == 1:
            out[std] = match[0]
    return out


def normalize_behavior(df: pd.DataFrame, *, columns: Mapping[str, str] | None = None, choice_base: int = 0,
                       source: str = "<table>", n_options: int | None = None,
                       renamed: Mapping[str, str] | None = None, copy: bool = True) -> pd.DataFrame:
    """Apply the column map, then validate and type the standard columns.  Returns a new table.

    The one validator of behaviour tables: CSV/TSV tables, NWB trials (:func:`dopa_rl.io.nwb.read_behavior`)
    and the trials of dopamine sessions all pass here, so a problem has one message whatever the source.
    Every problem found is listed in one :class:`~dopa_rl.errors.InputError`.  ``renamed``: the column map
    a reader already applied (NWB), so messages name the lab's column too ("'reward' (your 'volume_ul')").

    ``columns`` maps standard names to the lab's (``{"choice": "lever"}``); headers that differ from the
    standard names only in case (``Subject``) are matched too.  ``choice_base=1`` accepts 1-based choices;
    ``n_options`` refuses a choice above it.  Missing ``subject`` becomes the source's file stem, missing
    ``session`` "1" and missing ``trial`` the row order within each session.  A missed trial (empty choice)
    is kept with choice NaN and skipped by the models, whatever its reward cell holds (its reward becomes
    0).  An option chosen on under 1% of the trials gives a :class:`~dopa_rl.errors.DataWarning` naming its
    first rows.  ``df.attrs["source_columns"]`` keeps the table's own column names.  ``copy=False``: the
    caller gives up ``df`` (a table it has just read), which may then be changed in place.
    """
    if df is None or len(df) == 0:
        raise InputError(f"{source}: the table has no rows")
    if copy:
        df = df.copy()
    df.columns = [str(c) for c in df.columns]
    own_columns = list(df.columns)
    problems: list[str] = []
    columns = _case_insensitive(df, columns)
    yours = {**(renamed or {}), **columns}

    def label(name: str) -> str:
        lab = yours.get(name)
        return f"'{name}' (your '{lab}')" if lab and lab != name else f"'{name}'"

    for std, lab in columns.items():
        if std not in STANDARD_COLUMNS:
            problems.append(f"'{std}' is not a standard column ({', '.join(STANDARD_COLUMNS)})")
        elif lab not in df.columns:
            problems.append(f"column '{lab}' (mapped to {std}) not found; columns are: {', '.join(df.columns)}")
    if problems:
        raise InputError(f"{source}: " + "; ".join(problems))
    for std, lab in (columns or {}).items():
        if lab != std:
            if std in df.columns:
                df = df.drop(columns=[std])
            df = df.rename(columns={lab: std})

    if "reward" not in df.columns:
        problems.append("no 'reward' column (map yours with `columns` reward=NAME)")
    if "cue" not in df.columns and "choice" not in df.columns:
        problems.append("no 'cue' or 'choice' column (map yours with `columns` cue=NAME or choice=NAME)")
    if problems:
        shown = ", ".join(own_columns[:12]) + (" ..." if len(own_columns) > 12 else "")
        raise InputError(f"{source}: " + "; ".join(problems) + f" [columns: {shown}]")
    invented_subject = "subject" not in df.columns
    if invented_subject:
        df.insert(0, "subject", Path(str(source)).stem or "1")
    if df["subject"].isna().any():
        problems.append(f"column 'subject' is empty in {_rows(df['subject'].isna().to_numpy())}")
    df["subject"], subject_codes = _map_unique(df["subject"], _id_text, with_codes=True)
    if "session" not in df.columns:
        df.insert(1, "session", "1")
    df["session"], session_codes = _map_unique(df["session"], _id_text, with_codes=True)

    # a missed trial (choice cell empty) is skipped whatever its outcome cell holds (a numeric column has
    # no blank text cells: only NaN)
    if "choice" not in df.columns:
        missed = np.zeros(len(df), dtype=bool)
    elif pd.api.types.is_numeric_dtype(df["choice"]):
        missed = df["choice"].isna().to_numpy()
    else:
        missed = (df["choice"].isna() | (_map_unique(df["choice"], lambda v: str(v).strip()) == "")).to_numpy()
    if missed.any() and "reward" in df.columns:
        df["reward"] = df["reward"].where(~missed, 0.0)
        df["choice"] = df["choice"].where(~missed, np.nan)
    reward_given = df["reward"].notna().to_numpy() if "reward" in df.columns else None
    for col in NUMERIC_COLUMNS:
        if col in df.columns:
            _numeric(df, col, problems, label)
    if reward_given is not None:  # (non-numeric rewards are reported above, once)
        if not reward_given.all():
            problems.append(f"column {label('reward')} is missing (NaN) in {_rows(~reward_given)}; every trial needs an "
                            f"outcome (0 when omitted)")
        inf = reward_given & np.isinf(df["reward"].to_numpy())
        if inf.any():
            problems.append(f"column 'reward' is infinite in {_rows(inf)}; give the amount (0 when omitted)")
    if "licks" in df.columns:
        neg = (df["licks"] < 0).to_numpy()
        if neg.any():
            problems.append(f"column 'licks' has negative counts ({_rows(neg)})")

    if "choice" in df.columns:
        raw = pd.to_numeric(df["choice"], errors="coerce")
        text = raw.isna().to_numpy() & df["choice"].notna().to_numpy()
        if text.any():
            example = df["choice"].to_numpy()[np.flatnonzero(text)[0]]
            problems.append(f"column 'choice' has non-numeric values ({_rows(text)}: {example!r}); "
                            f"choices are option numbers (0-based, or 1-based with `choice_base` 1)")
        values = raw.to_numpy(dtype=float) - choice_base
        frac = np.isfinite(values) & (values != np.round(values))
        if frac.any():
            problems.append(f"column 'choice' has non-integer values ({_rows(frac)})")
        neg = np.isfinite(values) & (values < 0)
        if neg.any():
            lowest = np.nanmin(values[neg]) + choice_base
            problems.append(f"choice out of range: {lowest:g} in {_rows(neg)} is below the first option "
                            f"({choice_base}); use `choice_base` {0 if choice_base == 1 else 1} if your options are "
                            f"numbered from {0 if choice_base == 1 else 1}; a missed trial is an empty cell")
        if n_options is not None:
            high = np.isfinite(values) & (values >= n_options)
            if high.any():
                first = int(np.flatnonzero(high)[0])
                problems.append(f"choice {_id_text(df['choice'].to_numpy()[first])} in {_rows(high)} is out of range: "
                                f"above the last of the `n_options` {n_options} options ({choice_base}.."
                                f"{n_options - 1 + choice_base})")
        df["choice"] = values
        if not problems:
            _warn_rare_options(values, choice_base, source)

    if "cue" in df.columns:
        nan = df["cue"].isna().to_numpy()
        if nan.any():
            problems.append(f"column 'cue' is empty in {_rows(nan)}")
        df["cue"] = _map_unique(df["cue"], lambda v: _id_text(v).replace(" ", "") if v == v else v)

    if "trial" in df.columns:
        t = pd.to_numeric(df["trial"], errors="coerce")
        if t.isna().any():
            problems.append(f"column 'trial' has missing or non-numeric values ({_rows(t.isna().to_numpy())})")
        df["trial"] = t
    if problems:
        raise InputError(f"{source}: " + "; ".join(problems))
    if "trial" not in df.columns:
        df["trial"] = df.groupby(["subject", "session"], sort=False).cumcount()
    df["trial"] = df["trial"].astype(np.int64)
    if invented_subject and df.duplicated(["subject", "session", "trial"]).any():
        raise InputError(f"{source}: no subject column, and trial numbers repeat: if the file holds several "
                         f"animals, name their column with `columns` subject=NAME (columns: {', '.join(own_columns)})")
    check_unique_trials(df, source, codes=(subject_codes, session_codes))
    lead = [c for c in ("subject", "session", "trial") if c in df.columns]
    out = df[lead + [c for c in df.columns if c not in lead]].reset_index(drop=True)
    out.attrs["source_columns"] = own_columns
    return out


RARE_OPTION = 0.01


def _warn_rare_options(values: np.ndarray, choice_base: int, source: str) -> None:
    """Warn about an option chosen on under 1% of the trials (a typo such as a 3 in a two-option file adds an
    option to every subject's task)."""
    import warnings

    from dopa_rl.errors import DataWarning

    ok = np.isfinite(values)
    n = int(ok.sum())
    if n < 20:
        return
    counts = np.bincount(values[ok].astype(np.int64))
    for k in np.flatnonzero((counts > 0) & (counts < RARE_OPTION * n)):
        rows = values == k
        warnings.warn(DataWarning(
            f"{source}: choice {k + choice_base} is chosen on only {counts[k]} of {n} trials ({_rows(rows)}); "
            f"a typo? It makes the task {len(counts)}-option for every subject (give `n_options` to refuse "
            f"values above it)"), stacklevel=3)


def check_unique_trials(df: pd.DataFrame, source: str, codes: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """Each (subject, session, trial) names one row; repeated trial numbers would interleave two sessions.

    ``codes``: integer codes of the subject and session columns when the caller has them (equal codes, equal
    ids), so the check hashes integers instead of text."""
    dup = None
    if codes is not None:
        sc, ss = (np.asarray(c, dtype=np.int64) for c in codes)
        trial = df["trial"].to_numpy(dtype=np.int64)
        lo, span = int(trial.min()), int(trial.max()) - int(trial.min()) + 1
        n_sess = int(ss.max()) + 1
        if (int(sc.max()) + 1) * n_sess * span < 2 ** 62:
            key = (sc * n_sess + ss) * span + (trial - lo)
            dup = pd.Series(key).duplicated(keep=False).to_numpy()
    if dup is None:
        dup = df.duplicated(["subject", "session", "trial"], keep=False).to_numpy()
    if dup.any():
        first = df.iloc[int(np.flatnonzero(dup)[0])]
        raise InputError(f"{source}: trial numbers repeat within a subject and session ({_rows(dup)}: subject "
                         f"{first['subject']}, session {first['session']}, trial {first['trial']}); give each "
                         f"session its own label in a 'session' column (or map yours with `columns` session=NAME)")


def _factorize_runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize`` (order of first appearance, -1 for missing) of a column whose values come in runs
    (an id on every trial of its session): only the first value of each run is hashed."""
    n = values.shape[0]
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, dtype=object)
    start = np.ones(n, dtype=bool)
    start[1:] = values[1:] != values[:-1]          # NaN != NaN: each missing cell starts a run (code -1)
    heads = np.flatnonzero(start)
    codes, uniq = pd.factorize(values[heads], sort=False, use_na_sentinel=True)
    return np.repeat(codes, np.diff(np.append(heads, n))), np.asarray(uniq, dtype=object)


def _map_unique(values: pd.Series, fn, with_codes: bool = False):
    """``values.map(fn)`` (object dtype) with ``fn`` called once per distinct value (ids repeat on every
    trial); ``with_codes``: also the integer code of each row's mapped value (equal codes, equal values)."""
    codes, uniq = _factorize_runs(values.to_numpy())
    mapped = np.array([fn(v) for v in uniq] + [fn(np.nan)], dtype=object)
    # the distinct values in the text dtype pandas infers (object, or str in pandas 3), then one take per
    # row (code -1, missing, takes the last: fn(nan)); no per-row conversion
    out = pd.Series(pd.Series(mapped).array.take(codes), index=values.index, name=values.name)
    if not with_codes:
        return out
    # distinct raw values can map to one value (" m1" and "m1"): number the mapped values themselves
    remap = pd.factorize(pd.Series(mapped, dtype=object), sort=False, use_na_sentinel=False)[0]
    return out, remap[codes]


def _id_text(v) -> str:
    """Ids as text: 7.0 -> "7", " m1 " -> "m1"."""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v).strip()


def expand_paths(paths: Iterable[str | os.PathLike] | str | os.PathLike) -> list[Path]:
    """Files named directly, and the .nwb files (else the tables) inside named folders.

    Hidden files in a folder (``._x.csv`` written by macOS on shared drives, editor lock files) are skipped.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            visible = [q for q in p.iterdir() if not q.name.startswith(".")]
            found = (sorted(q for q in visible if q.suffix.lower() == ".nwb")
                     or sorted(q for q in visible if q.suffix.lower() in TABLE_SUFFIXES))
            if not found:
                raise InputError(f"{p}: folder holds no .nwb, .csv or .tsv files")
            out += found
        elif not p.exists():
            raise InputError(f"{p}: no such file")
        else:
            out.append(p)
    if not out:
        raise InputError("no input files given")
    return out


def load_behavior(paths, *, columns: Mapping[str, str] | None = None, choice_base: int = 0,
                  trials_table: str | None = None, n_options: int | None = None) -> pd.DataFrame:
    """Read one or many behavior files (CSV/TSV tables or NWB sessions) into one validated table.

    When several tables are read and one has no ``session`` column, its file name (stem) is its session.
    Repeated (subject, session, trial) rows are an InputError: they would interleave two sessions.
    """
    frames = []
    files = expand_paths(paths)
    stems = [p.stem for p in files]
    for path in files:
        if path.suffix.lower() == ".nwb":
            from dopa_rl.io.nwb import read_behavior

            raw = read_behavior(path, columns=columns, trials_table=trials_table, validate=False)
            frames.append(normalize_behavior(raw, choice_base=choice_base, source=str(path), n_options=n_options,
                                             renamed=columns))
        else:
            if trials_table:
                raise InputError(f"{path}: `trials_table` applies to NWB files only")
            raw = read_table(path, [(columns or {}).get(c, c) for c in ID_COLUMNS])
            if len(files) > 1 and "session" not in raw.columns and "session" not in (columns or {}):
                # several files without a session column: each file is a session, named after the file
                raw.insert(0, "session", path.stem if stems.count(path.stem) == 1 else str(path))
            frames.append(normalize_behavior(raw, columns=columns, choice_base=choice_base, source=str(path),
                                             n_options=n_options, copy=False))
    if len(frames) == 1:
        return frames[0]
    # a file without a task column the others have (say a parameters table beside the data) is not behavior
    task_cols = [c for c in ("choice", "reward", "cue") if any(c in f.columns for f in frames)]
    lacking = [f"{path} has no column '{c}'" for path, f in zip(files, frames) for c in task_cols if c not in f.columns]
    if lacking:
        raise InputError("; ".join(lacking[:3]) + (f" (and {len(lacking) - 3} more)" if len(lacking) > 3 else "")
                         + " that other input files have; give behavior files of one kind only")
    own = list(dict.fromkeys(c for f in frames for c in f.attrs.get("source_columns", f.columns)))
    df = pd.concat(frames, ignore_index=True)
    df.attrs = {"source_columns": own}
    check_unique_trials(df, ", ".join(map(str, files)) if len(files) <= 3 else f"{files[0].parent} ({len(files)} files)")
    return df
