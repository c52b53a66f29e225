package main

import (
	"fmt"
	"math/rand"
	"os"
	"strings"
)

func singles2runes[T any](s []T) []rune {
	var out []rune
	for _, x := range s {
		out = append(out, any(x).(interface{ R() rune }).R())
	}
	return out
}

func cccRunes[T any](s []T) []rune {
	var out []rune
	for _, x := range s {
		out = append(out, any(x).(interface{ R() rune }).R())
	}
	return out
}

// writeVectors writes "hex(input) hex(key)" lines for a corpus that stresses
// every part of the table: expansions, contractions (also discontiguous),
// Hangul, implicit weights and ignorables.
func writeVectors(key func(string) []byte, singles []rune, contractions []string, marks []rune) {
	f, err := os.Create("/tmp/vindex-loose-vectors.txt")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewSource(20240601))
	pick := func() rune {
		switch k := rng.Intn(100); {
		case k < 25:
			return rune(0x20 + rng.Intn(0x5f))
		case k < 55:
			return singles[rng.Intn(len(singles))]
		case k < 70:
			return marks[rng.Intn(len(marks))]
		case k < 80:
			return []rune(contractions[rng.Intn(len(contractions))])[0]
		case k < 85:
			return rune(0xAC00 + rng.Intn(11172))
		case k < 90:
			return rune(0x4E00 + rng.Intn(0x5200))
		default:
			for {
				r := rune(rng.Intn(0x110000))
				if r < 0xD800 || r > 0xDFFF {
					return r
				}
			}
		}
	}
	emit := func(s string) {
		fmt.Fprintf(f, "%x %x\n", s, key(s))
	}
	for _, c := range contractions {
		emit(c)
		rs := []rune(c)
		// A mark between the runes of a contraction: the discontiguous case.
		emit(string(rs[0]) + string(marks[rng.Intn(len(marks))]) + string(rs[1:]))
	}
	for i := 0; i < 1500; i++ {
		var b strings.Builder
		n := 1 + rng.Intn(8)
		for j := 0; j < n; j++ {
			b.WriteRune(pick())
		}
		emit(b.String())
	}
}
