def test_run(capsys):
    from webapp import app

    app.run()
    assert "health" in capsys.readouterr().out
