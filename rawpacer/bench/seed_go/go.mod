module rawpacer/seedgo

go 1.19
