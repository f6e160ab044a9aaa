module rewind.test/clients/go

go 1.19
