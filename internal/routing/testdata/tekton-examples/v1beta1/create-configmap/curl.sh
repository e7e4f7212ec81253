curl -v \
-H 'Content-Type: application/json' \
-d '{"action": "opened"}' \
http://localhost:8080