from rtseg_core import text_table


def test_columns_align_on_the_widest_cell_without_trailing_spaces():
    out = text_table([("name", "ms"), ("paper", "22.35"), ("trial-16", "-")])
    assert out.splitlines() == ["name      ms", "paper     22.35", "trial-16  -"]
    assert text_table([]) == ""
