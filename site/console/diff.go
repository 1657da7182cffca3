package console

import "strings"

// diffLine is one line of a diff between two note versions.
type diffLine struct {
	Op   byte // ' ', '+' or '-'
	Text string
}

// maxDiffCells bounds the work of a diff (lines before × lines after).
const maxDiffCells = 4 << 20

// lineDiff returns a line diff from a to b by longest common subsequence,
// after trimming the common head and tail; nil when the texts are too far
// apart and too long to compare cheaply.
func lineDiff(a, b string) []diffLine {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	var head, tail []diffLine
	for len(x) > 0 && len(y) > 0 && x[0] == y[0] {
		head = append(head, diffLine{' ', x[0]})
		x, y = x[1:], y[1:]
	}
	for len(x) > 0 && len(y) > 0 && x[len(x)-1] == y[len(y)-1] {
		tail = append([]diffLine{{' ', x[len(x)-1]}}, tail...)
		x, y = x[:len(x)-1], y[:len(y)-1]
	}
	if (len(x)+1)*(len(y)+1) > maxDiffCells {
		return nil
	}
	// lcs[i][j] is the LCS length of x[i:] and y[j:].
	lcs := make([][]int32, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int32, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	out := head
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			out = append(out, diffLine{' ', x[i]})
			i, j = i+1, j+1
		case j < len(y) && (i == len(x) || lcs[i][j+1] >= lcs[i+1][j]):
			out = append(out, diffLine{'+', y[j]})
			j++
		default:
			out = append(out, diffLine{'-', x[i]})
			i++
		}
	}
	return append(out, tail...)
}
