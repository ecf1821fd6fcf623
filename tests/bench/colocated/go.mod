module github.com/regmigrate/regmigrate/tests/bench/colocated

go 1.26
