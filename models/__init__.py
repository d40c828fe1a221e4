"""How it is learned: units and networks, per framework (torch/, tf/), and their numpy spec."""
