package cellspec

// Suggest returns a hint such as `did you mean "orders"?` naming the known
// word closest to word, or "" when none is close enough to be a likely
// typo. The command line uses it for names given as arguments.
func Suggest(word string, known []string) string { return suggest(word, known) }

// suggest is Suggest; it also knows docker compose spellings of cell keys.
func suggest(word string, known []string) string {
	if alias, ok := composeAliases[word]; ok && contains(known, alias) {
		return "did you mean " + quote(alias) + "?"
	}
	for _, k := range known {
		if len(word) >= 3 && len(k) > len(word) && k[:len(word)] == word {
			return "did you mean " + quote(k) + "?"
		}
	}
	best, bestDist := "", max(2, len(word)/3+1)
	for _, k := range known {
		if d := editDistance(word, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return "did you mean " + quote(best) + "?"
}

// composeAliases maps docker compose spellings to the cell file's keys, so
// someone coming from compose is pointed at the right one.
var composeAliases = map[string]string{
	"environment": "env",
	"enviroment":  "env",
	"ports":       "port",
	"expose":      "port",
	"healthcheck": "health",
	"scale":       "replicas",
	"deploy":      "replicas",
	"networks":    "uses",
}

func quote(s string) string { return "\"" + s + "\"" }

// editDistance is the Levenshtein distance between a and b, counting an
// adjacent transposition as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
