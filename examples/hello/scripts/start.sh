#!/bin/sh
echo "started at $(date -u +%FT%TZ)" > /tmp/shoal-example/www/started.txt
echo "application started"
