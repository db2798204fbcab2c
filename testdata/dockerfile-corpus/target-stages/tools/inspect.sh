#!/bin/sh
# Prints what support asks for first.
id
ls -l /opt/venv/bin
