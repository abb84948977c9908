"""The exporters that ship with profiletel, each registered through its own entry point
in the ``profiletel`` group, exactly as a third-party plugin would be."""
