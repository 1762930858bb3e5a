-- The IPVS services lbd created, so that after a restart it can still delete one whose virtual
-- server was removed while the change had not reached the kernel (and never touches services
-- someone else created).
CREATE TABLE dataplane_owned (
    service TEXT PRIMARY KEY
);
