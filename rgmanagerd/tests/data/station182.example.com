name = "station182.example.com"
uuid = "0d64fcd5-9f51-1f53-855e-fb0fb81df160"
maxmem = 280
memory = 280
vcpus = 1
bootloader = "/usr/bin/pygrub"
on_poweroff = "destroy"
on_reboot = "restart"
on_crash = "restart"
vfb = [ "type=vnc,vncunused=1" ]
disk = [ "tap:aio:/var/lib/xen/images/station182.example.com-disk0,xvda,w" ]
vif = [ "mac=00:16:3e:00:01:82,bridge=xenbr1" ]
