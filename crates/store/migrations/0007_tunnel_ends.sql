-- Migration 7: tunnelled packets keep their tunnel's ends.
--
-- The parser decodes tunnels (GRE, VXLAN, GENEVE, GTP-U, IP-in-IP, Teredo, PPPoE,
-- MPLS, FabricPath): a packet row describes the innermost flow — its addresses, ports,
-- flags, DNS names and SNI — and `protocols` the whole stack. The outermost IP
-- header's addresses (the tunnel's endpoints: two VTEPs, a GTP gateway and a cell
-- site) go here; NULL for a packet that was not tunnelled, or whose tunnel had no IP
-- outside it (PPPoE, MPLS on the wire). Adding nullable columns rewrites nothing.
ALTER TABLE packets ADD COLUMN outer_src_addr TEXT;
ALTER TABLE packets ADD COLUMN outer_dst_addr TEXT;
