"""tools/: student editions and the notebook executor's local-path guard."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from _tooling import load_tool

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.single_backend


editions = load_tool("make_editions")
executor = load_tool("execute_notebooks")

SOLVED = '''def attention(q, k, v):
    """Scaled dot-product attention."""
    # BEGIN SOLUTION: scores = q k^T / sqrt(d), softmax over the keys, then weights @ v
    scores = q @ k.T / np.sqrt(q.shape[-1])
    return softmax(scores) @ v
    # END SOLUTION

check_attention(attention)'''


def test_solution_becomes_a_stub_that_says_what_to_write():
    out, n = editions.strip_solutions(SOLVED)
    assert n == 1
    assert "q @ k.T" not in out and "BEGIN SOLUTION" not in out and "END SOLUTION" not in out
    assert "    # TODO: scores = q k^T / sqrt(d), softmax over the keys, then weights @ v" in out
    assert '    raise NotImplementedError("Exercise: scores' in out
    assert out.startswith("def attention") and out.endswith("check_attention(attention)")
    compile(out, "<student>", "exec")  # the stub is valid Python


@pytest.mark.parametrize("bad", ["# BEGIN SOLUTION\nx = 1", "x = 1\n# END SOLUTION"])
def test_unbalanced_markers_are_errors(bad):
    with pytest.raises(ValueError, match="SOLUTION"):
        editions.strip_solutions(bad, "cell 3")


def test_student_edition_of_a_notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"),
                nbformat.v4.new_code_cell(SOLVED, execution_count=1,
                                          outputs=[nbformat.v4.new_output("stream", text="✅")])]
    student, n = editions.student_edition(nb)
    assert n == 1 and student.cells[1].outputs == [] and student.cells[1].execution_count is None
    assert nb.cells[1].source == SOLVED  # the teacher's notebook is untouched
    nbformat.validate(student)


def test_course_student_editions_are_valid(tmp_path):
    """Every course notebook with exercises gives a valid student edition with no solution left."""
    paths = sorted(str(p) for p in (ROOT / "notebooks").glob("[0-9]*.ipynb"))
    assert paths, "no notebooks found"
    editions.main(str(tmp_path), paths)
    for path in paths:
        teacher = nbformat.read(path, as_version=4)
        student = nbformat.read(tmp_path / "student" / Path(path).name, as_version=4)
        nbformat.validate(student)
        text = "\n".join(c.source for c in student.cells)
        assert "BEGIN SOLUTION" not in text
        markers = sum(c.source.count("# BEGIN SOLUTION") for c in teacher.cells)
        assert text.count("# TODO: ") >= markers
        verdicts = [i for i, c in enumerate(student.cells)
                    if c.cell_type == "code" and editions._shows_verdict(c)]
        assert not verdicts, f"{Path(path).name}: stored checker verdicts in cells {verdicts}"


TOP_LEVEL = '''# Predict first, then run the next cell.
# BEGIN SOLUTION: the letter of your answer, and the parameter count you expect
answer = "b"
params, tokens = 4_352, 50
# END SOLUTION
print("noted")'''


def test_top_level_solution_becomes_none_so_run_all_goes_on():
    out, n = editions.strip_solutions(TOP_LEVEL)
    assert n == 1 and '"b"' not in out and "4_352" not in out
    assert "answer = None" in out and "params = None" in out and "tokens = None" in out
    assert "NotImplementedError" not in out
    scope = {}
    exec(compile(out, "<student>", "exec"), scope)  # runs: nothing raised
    assert scope["answer"] is None


def test_top_level_solution_with_code_is_refused():
    with pytest.raises(ValueError, match="only assign"):
        editions.strip_solutions("# BEGIN SOLUTION: x\nfor i in range(3): pass\n# END SOLUTION",
                                 "cell 9")


def test_student_edition_clears_verdicts_and_tagged_cells():
    nb = nbformat.v4.new_notebook()
    verdict = nbformat.v4.new_code_cell("nb00.check(answer)", execution_count=3, outputs=[
        nbformat.v4.new_output("execute_result", data={"text/plain": "✅ right"},
                               execution_count=3)])
    tagged = nbformat.v4.new_code_cell("plot(my_fn)", execution_count=4, outputs=[
        nbformat.v4.new_output("stream", text="figure")])
    tagged.metadata["tags"] = ["uses-exercise"]
    plain = nbformat.v4.new_code_cell("print(1)", execution_count=5, outputs=[
        nbformat.v4.new_output("stream", text="1\n")])
    nb.cells = [verdict, tagged, plain]
    student, _ = editions.student_edition(nb)
    assert student.cells[0].outputs == [] and student.cells[1].outputs == []
    assert student.cells[2].outputs[0].text == "1\n"  # other outputs stay


def test_executor_spots_local_paths():
    nb = nbformat.v4.new_notebook()
    home = str(Path.home())
    nb.cells = [nbformat.v4.new_code_cell("x", outputs=[
        nbformat.v4.new_output("stream", text=f"saved to {home}/work/model.keras\n")])]
    assert executor.leaks(nb)
    nb.cells[0].outputs[0].text = "saved to data/model.keras\n"
    assert not executor.leaks(nb)


def test_executor_drops_tensorflow_log_noise_and_merges_streams():
    nb = nbformat.v4.new_notebook()
    noise = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
             "I0000 00:00:1796017283.592501    4633 port.cc:153] oneDNN custom operations are on.\n"
             "E0000 00:00:1796020779.875271   14199 util.cc:131] oneDNN supports DT_INT64 only ...\n")
    nb.cells = [nbformat.v4.new_code_cell("x", outputs=[
        nbformat.v4.new_output("stream", name="stderr", text=noise),
        nbformat.v4.new_output("stream", name="stdout", text="every output inside the range:"),
        nbformat.v4.new_output("stream", name="stdout", text=" True\n"),
        nbformat.v4.new_output("stream", name="stderr", text="UserWarning: a real warning\n")])]
    executor.tidy(nb)
    assert [(o["name"], o["text"]) for o in nb.cells[0].outputs] == [
        ("stdout", "every output inside the range: True\n"), ("stderr", "UserWarning: a real warning\n")]


def test_editions_help_makes_no_folder(tmp_path, monkeypatch, capsys):
    """`make_editions.py --help` prints the usage; it used to create a folder named "--help"."""
    monkeypatch.chdir(tmp_path)
    assert editions.cli(["--help"]) == 0 and "Usage" in capsys.readouterr().err
    assert editions.cli(["only_a_folder"]) == 2
    assert list(tmp_path.iterdir()) == []


def test_compare_records_matches_runs_and_ignores_times():
    compare = load_tool("compare_records").compare
    shipped = {"runs": [{"seed": 0, "model": "a", "test": {"accuracy": 0.80}, "training_seconds": 9},
                        {"seed": 1, "model": "a", "test": {"accuracy": 0.70}}]}
    same = {"runs": [{"seed": 0, "model": "a", "test": {"accuracy": 0.803}, "training_seconds": 99}]}
    assert compare(shipped, same, 0.01)[1]
    drifted = {"runs": [{"seed": 1, "model": "a", "test": {"accuracy": 0.75}}]}
    lines, ok = compare(shipped, drifted, 0.01)
    assert not ok and any("test.accuracy" in line for line in lines)
    assert not compare(shipped, {"runs": [{"seed": 2, "model": "a"}]}, 0.01)[1]
