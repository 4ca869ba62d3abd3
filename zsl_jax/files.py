"""Reading the benchmark files: MATLAB .mat arrays, latin-1 label pickles, class-feature .npz files.

Every reader raises a DataError that names the file and says what to do when it is missing or is
not what the benchmark expects.
"""

import os
import pickle

import numpy as np
import scipy.io

from gen_runtime.errors import DataError

# Where the originals' processed files come from, for messages about missing visual features.
GAZSL_DATA_HINT = ('they are not distributed with this repository: download the processed CUB/NABirds data '
                   'linked from the READMEs of EthanZhu90/ZSL_GAN or mhelhoseiny/CIZSL (CUB_NAB_Data.zip) and '
                   'put the file there, or set --config.benchmark.features_dir to the folder that holds it')
GBU_DATA_HINT = ('download xlsa17 of Xian et al. ("Zero-Shot Learning - the Good, the Bad and the Ugly") and put '
                 '<DATASET>/res101.mat there, or set --config.benchmark.features_dir to the folder that holds it')


def resolve_in(folder: str, path: str) -> str:
    """`path` itself if it is absolute or exists (relative to the working directory), else inside `folder`."""
    return path if os.path.isabs(path) or os.path.exists(path) else os.path.join(folder, path)


def require_file(path: str, what: str, hint: str) -> str:
    """`path` if it is a file; otherwise a DataError naming `what` it should be and `hint`."""
    if not os.path.isfile(path):
        raise DataError(f'{what} {path} does not exist; {hint}')
    return path


def load_mat(path: str, keys: tuple[str, ...], what: str, hint: str) -> dict[str, np.ndarray]:
    """The arrays `keys` of a .mat file (MATLAB v5, as scipy reads it)."""
    require_file(path, what, hint)
    try:
        content = scipy.io.loadmat(path)
    except (ValueError, OSError, NotImplementedError) as e:
        raise DataError(f'{what} {path} is not a readable MATLAB v5 .mat file ({" ".join(str(e).split())}); '
                        'save it with scipy.io.savemat or MATLAB -v7') from e
    missing = [k for k in keys if k not in content]
    if missing:
        found = sorted(k for k in content if not k.startswith('__'))
        raise DataError(f'{what} {path} has no {missing[0]!r} (it has {found})')
    return {k: content[k] for k in content if not k.startswith('__')}


def load_label_pickle(path: str) -> np.ndarray:
    """A label pickle of the GAZSL data (a numpy array or a list, written by Python 2: latin-1)."""
    require_file(path, 'label file', 'it ships with the benchmark split files; check data.path')
    try:
        with open(path, 'rb') as f:
            labels = pickle.load(f, encoding='latin1')
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise DataError(f'label file {path} is not a readable pickle ({e})') from e
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f'label file {path} holds {labels.dtype} of shape {labels.shape}, expected 1-D integers')
    return labels.astype(np.int32)


def load_class_features(path: str, class_ids: np.ndarray) -> np.ndarray:
    """Rows of a class-feature file for 1-based `class_ids`, as float32 (num_ids, dim).

    A .mat file holds `PredicateMatrix` (classes x dims, row i = class i+1), the originals' TF-IDF
    format, or `att` (dims x classes), the xlsa17 format; an .npz file holds `features` (classes x
    dims) and `class_ids` (1-based), as the `tfidf_report` and `text_features` modes write it.
    """
    hint = ('set --config.benchmark.text_path to a PredicateMatrix .mat or to the .npz that '
            '`--mode text_features` or `--mode tfidf_report` writes')
    if path.endswith('.npz'):
        require_file(path, 'class text-feature file', hint)
        with np.load(path) as f:
            if 'features' not in f or 'class_ids' not in f:
                raise DataError(f'class text-feature file {path} needs arrays features and class_ids '
                                f'(it has {sorted(f.files)})')
            features, ids = f['features'], f['class_ids']
        row_of = {int(c): i for i, c in enumerate(ids)}
        missing = [int(c) for c in class_ids if int(c) not in row_of]
        if missing:
            raise DataError(f'class text-feature file {path} has no row for class ids {missing[:5]}')
        rows = np.asarray([row_of[int(c)] for c in class_ids])
    else:
        content = load_mat(path, (), 'class text-feature file', hint)
        if 'PredicateMatrix' in content:
            features = content['PredicateMatrix']
        elif 'att' in content:
            features = content['att'].T
        else:
            raise DataError(f'class text-feature file {path} has neither PredicateMatrix nor att '
                            f'(it has {sorted(content)}); {hint}')
        rows = np.asarray(class_ids, np.int64) - 1
        if rows.min() < 0 or rows.max() >= len(features):
            raise DataError(f'class text-feature file {path} has {len(features)} rows; class ids go up to '
                            f'{rows.max() + 1}')
    return np.asarray(features[rows], np.float32)
