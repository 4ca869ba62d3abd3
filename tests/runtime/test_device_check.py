"""scripts/device_check.sh at CPU sizes (TINY=1): its tests step and every row of benchmarks/device_suite.py, in
float32 and bf16, ours beside the PyTorch baselines where there is one, into JSON and a Markdown table."""

import json
import os
import subprocess

ROWS_WITH_BASELINE = ('latent UNet', 'CIZSL', 'Euler-Maruyama')


def test_device_check_runs_at_tiny_sizes(tmp_path):
    out = tmp_path / 'check'
    proc = subprocess.run(['bash', 'scripts/device_check.sh', str(out)], env={**os.environ, 'TINY': '1'},
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert ' passed' in (out / 'tests.log').read_text()
    results = json.loads((out / 'device_suite.json').read_text())['results']
    names = {r['name'].split(',')[0].split(' (')[0] for r in results}
    assert len(results) == 12 and len(names) == 6, names
    for r in results:
        assert r['dtype'] in ('float32', 'bfloat16') and r['ours_median_s'] > 0
        if r['name'].startswith(ROWS_WITH_BASELINE):
            assert r['baseline_median_s'] > 0 and r['speedup'] > 0
    assert sum(r['baseline_median_s'] is not None for r in results) == 7  # + the float32 likelihood (scipy)
    table = (out / 'device_suite.md').read_text()
    assert table.count('\n| ') == 12 and 'Measured' in table  # the 12 rows under the header
