"""Local fake ERP servers speaking each ERP's wire protocol, and the helpers the ERP tests share."""
