"""The raw Wikipedia articles of the CUB classes: `<id>_<Name>.xlsx`, one sentence per row.

The id in the file name is the 0-based class index (class id = id + 1, the numbering of the split
files); the `sentences` column holds the text.
"""

import dataclasses
import os
import re

import numpy as np

from gen_runtime.errors import DataError

SENTENCE_COLUMN = 'sentences'


@dataclasses.dataclass(frozen=True)
class Article:
    class_id: int  # 1-based, as in train_cid / test_cid
    name: str
    sentences: list[str]

    @property
    def text(self) -> str:
        return ' '.join(self.sentences)


def family_neighbour_rate(features: np.ndarray, names: list[str]) -> float:
    """A sanity score of class text features: among classes that share their family (the last word of
    the class name, e.g. 'Warbler') with another class, the share whose most cosine-similar other
    class is of the same family."""
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    family = np.asarray([name.split('_')[-1].lower() for name in names])
    nearest = family[np.argmax(similarity, axis=1)]
    has_mate = np.asarray([np.sum(family == f) > 1 for f in family])
    return float(np.mean(nearest[has_mate] == family[has_mate]))


def read_article(path: str) -> list[str]:
    """The non-empty sentences of one article workbook."""
    try:
        import openpyxl
    except ImportError as e:
        raise DataError(f'reading the article workbook {path} needs openpyxl, which is not installed '
                        '(pip install openpyxl)') from e

    try:
        workbook = openpyxl.load_workbook(path, read_only=True)
    except Exception as e:  # noqa: BLE001 - openpyxl raises many kinds for a bad file
        raise DataError(f'{path} is not a readable .xlsx workbook ({type(e).__name__}: {e})') from e
    try:
        rows = workbook.worksheets[0].iter_rows(values_only=True)
        header = list(next(rows, ()))
        if SENTENCE_COLUMN not in header:
            raise DataError(f'{path} has no {SENTENCE_COLUMN!r} column (its header is {header})')
        column = header.index(SENTENCE_COLUMN)
        sentences = [' '.join(str(row[column]).split()) for row in rows
                     if len(row) > column and row[column] is not None and str(row[column]).strip()]
    finally:
        workbook.close()
    return sentences


def read_articles(folder: str, class_ids: list[int] | None = None) -> list[Article]:
    """The articles in `folder`, sorted by class id (only `class_ids` if given)."""
    if not os.path.isdir(folder):
        raise DataError(f'article folder {folder} does not exist; set text.articles_dir (relative to data.path) '
                        'to the folder of <id>_<Name>.xlsx files')
    found = {}
    for name in os.listdir(folder):
        match = re.match(r'(\d+)_(.*)\.xlsx$', name)
        if match:
            class_id = int(match.group(1)) + 1
            if class_ids is None or class_id in class_ids:
                found[class_id] = (name, match.group(2))
    if not found:
        raise DataError(f'no <id>_<Name>.xlsx articles in {folder}')
    missing = sorted(set(class_ids or []) - set(found))
    if missing:
        raise DataError(f'{folder} has no article for class ids {missing[:5]}')
    return [Article(cid, label, read_article(os.path.join(folder, file)))
            for cid, (file, label) in sorted(found.items())]
