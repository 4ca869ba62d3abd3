"""Issue 22: the model sizes a CIZSL / GAZSL checkpoint's layers show are the config's too, or the import is
refused naming the field with both values, before anything is written."""

import pytest

from gen_runtime.errors import CheckpointError
from gen_runtime.modes import run_mode
from tests.zsl.test_original_checkpoints import config_for

# fixture, config field, wrong value, the checkpoint's value
CASES = [('cizsl', 'noise_dim', 4, 8), ('cizsl', 'hidden_dim', 64, 128), ('cizsl', 'text_reduction_dim', 8, 16),
         ('cizsl', 'text_reduction_dim', 0, 16), ('gbu', 'noise_dim', 4, 8), ('gbu', 'hidden_dim', 256, 128),
         ('gbu', 'text_reduction_dim', 16, 0)]


@pytest.mark.parametrize('name,field,wrong,theirs', CASES)
def test_sizes_other_than_the_checkpoints_are_refused_naming_the_field(name, field, wrong, theirs, tmp_path):
    with pytest.raises(CheckpointError, match=rf'; the checkpoint has model\.{field}={theirs} where this config has '
                                              rf'{wrong}; pass --config\.model\.{field}={theirs}$'):
        run_mode(config_for(name, **{field: wrong}), str(tmp_path), 'import_weights')
    run_dir = tmp_path / 'seed_0' / 'best_on_test'
    assert not (run_dir / 'checkpoints').exists() and not (run_dir / 'import.json').exists()
