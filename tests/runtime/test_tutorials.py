"""Every notebook under docs/tutorials runs top to bottom with FAST=1 (tiny sizes, the same cells): a cell
that raises, or prints a nan (a FAST size too small for a statistic, say), fails the test. Executed with nbclient
in a fresh kernel, on the real data of $JAXGEN_DATA_ROOT."""

import re
from pathlib import Path

import pytest

from tests.conftest import xla_flags

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / 'docs' / 'tutorials').glob('*.ipynb'))


def test_there_are_tutorials():
    assert NOTEBOOKS


@pytest.mark.parametrize('path', NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_tutorial_runs_in_fast_mode(path, data_root, tmp_path, monkeypatch):
    import nbclient
    import nbformat

    monkeypatch.setenv('JAXGEN_DATA_ROOT', str(data_root))
    monkeypatch.setenv('FAST', '1')
    monkeypatch.setenv('XLA_FLAGS', xla_flags())
    monkeypatch.setenv('TUTORIAL_WORKDIR', str(tmp_path / 'run'))
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(notebook, timeout=900, kernel_name='python3',
                            resources={'metadata': {'path': str(path.parent)}}).execute()
    outputs = [o for c in notebook.cells if c.cell_type == 'code' for o in c.get('outputs', [])]
    assert not [o for o in outputs if o.get('output_type') == 'error']
    printed = ''.join(o.get('text', '') for o in outputs if o.get('output_type') == 'stream')
    printed += ''.join(o.get('data', {}).get('text/plain', '') for o in outputs if 'data' in o)
    assert not re.findall(r'.*\bnan\b.*', printed, re.IGNORECASE)
