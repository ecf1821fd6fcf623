// Package terminal shows what a terminal would: tests of progress bars
// play the bytes a program wrote and look at the lines left on the screen.
package terminal

import "strings"

// Screen plays what was written to a terminal (text, newlines, carriage
// returns, cursor up, erase below and erase line, colours ignored) and
// returns the lines left on the screen, trailing spaces trimmed.
func Screen(raw string) []string {
	var lines [][]rune
	row, col := 0, 0
	put := func(r rune) {
		for len(lines) <= row {
			lines = append(lines, nil)
		}
		for len(lines[row]) < col {
			lines[row] = append(lines[row], ' ')
		}
		if col < len(lines[row]) {
			lines[row][col] = r
		} else {
			lines[row] = append(lines[row], r)
		}
		col++
	}
	rs := []rune(raw)
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; {
		case r == '\x1b' && i+1 < len(rs) && rs[i+1] == '[':
			j := i + 2
			n := 0
			for j < len(rs) && rs[j] >= '0' && rs[j] <= '9' {
				n = n*10 + int(rs[j]-'0')
				j++
			}
			for j < len(rs) && !(rs[j] >= '@' && rs[j] <= '~') {
				j++
			}
			if j < len(rs) {
				switch rs[j] {
				case 'A':
					row = max(0, row-max(n, 1))
				case 'J':
					if row < len(lines) {
						lines[row] = lines[row][:min(col, len(lines[row]))]
						lines = lines[:row+1]
					}
				case 'K':
					if row < len(lines) {
						lines[row] = lines[row][:min(col, len(lines[row]))]
					}
				}
			}
			i = j
		case r == '\n':
			row++
			col = 0
		case r == '\r':
			col = 0
		default:
			put(r)
		}
	}
	var out []string
	for _, l := range lines {
		out = append(out, strings.TrimRight(string(l), " "))
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}
