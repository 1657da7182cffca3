package console

//go:generate go tool templ generate
