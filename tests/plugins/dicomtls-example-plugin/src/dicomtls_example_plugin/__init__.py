"""An example dicomtls plugin: a client (``client.PynetdicomTls13``) and a proxy (``proxy.StunnelProxy``) that
dicomtls finds through this distribution's entry points, with no edit of dicomtls."""
